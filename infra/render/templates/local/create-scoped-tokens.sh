#!/bin/bash
# create-scoped-tokens.sh DIR OPERATOR_TOKEN_FILE USER ORG BUCKET SERVICE:UID:SECRET:ACCESS:DESCRIPTION...:
# the local stack's scoped InfluxDB tokens. Runs once InfluxDB is healthy, in a one-shot container of
# the InfluxDB image on the stack's network (INFLUX_HOST names the InfluxDB container), with the
# operator token read-only from InfluxDB's secrets volume. influxdb-token.sh, beside this script,
# creates or finds each token; it is written to DIR/SERVICE/SECRET (the secrets volume of the one
# service that reads it), mode 0400, owned by UID. Values go from pipe to file, never to output.
set -euo pipefail

usage() {
  echo "usage: $0 DIR OPERATOR_TOKEN_FILE USER ORG BUCKET SERVICE:UID:SECRET:ACCESS:DESCRIPTION..." >&2
  exit 2
}
[[ $# -ge 6 ]] || usage
dir=$1 operator=$2 user=$3 org=$4 bucket=$5
shift 5

umask 077
tmp=""
trap 'rm -f "${tmp}"' EXIT
for spec in "$@"; do
  [[ ${spec} =~ ^([a-z0-9-]+):([0-9]+):([a-z0-9-]+):(read|write):([a-z0-9-]+)$ ]] || usage
  service=${BASH_REMATCH[1]} uid=${BASH_REMATCH[2]} secret=${BASH_REMATCH[3]}
  access=${BASH_REMATCH[4]} description=${BASH_REMATCH[5]}
  mkdir -p "${dir}/${service}"
  file=${dir}/${service}/${secret}
  tmp=$(mktemp "${file}.XXXXXX")
  bash "$(dirname "$0")/influxdb-token.sh" "${operator}" "${user}" "${org}" "${bucket}" "${access}" \
    "${description}" >"${tmp}"
  if [[ ! -s ${tmp} ]]; then
    echo "${secret}: InfluxDB gave no ${access} token" >&2
    exit 1
  fi
  chmod 0400 "${tmp}"
  chown "${uid}" "${tmp}"
  mv -f "${tmp}" "${file}"
  tmp=""
  echo "${secret}: the ${access} token ${description} written for ${service} (uid ${uid})"
done
