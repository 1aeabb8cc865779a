#!/bin/bash
# generate-secrets.sh DIR LENGTH SERVICE:UID:SECRET...: the local stack's secrets, generated once.
# Runs as root in a one-shot container before the services start. DIR/SERVICE is the secrets volume
# of one service (mounted read-only at the catalog's SECRETS_DIR in that service's container) and
# DIR/SERVICE/SECRET its own copy of SECRET: mode 0400, owned by UID, the user that reads it.
#
# A secret that none of its services holds yet is generated: LENGTH letters and digits from
# /dev/urandom. One that some hold is copied to the others and never replaced, so InfluxDB and
# Grafana, which keep the values they were set up with in their data volumes, and the clients of
# InfluxDB keep agreeing across `pulumi destroy` and `up`. Copies that differ stop the script: it
# cannot tell which one the data was set up with.
# Values are never printed, held in a variable or put on a command line: they go from file to file.
set -euo pipefail

usage() {
  echo "usage: $0 DIR LENGTH SERVICE:UID:SECRET..." >&2
  exit 2
}
[[ $# -ge 3 && $2 =~ ^[1-9][0-9]*$ ]] || usage
dir=$1 length=$2
shift 2

secrets=()                      # in the order first named
declare -A readers=()           # secret -> "SERVICE:UID SERVICE:UID ..."
for spec in "$@"; do
  [[ ${spec} =~ ^([a-z0-9-]+):([0-9]+):([a-z0-9-]+)$ ]] || usage
  secret=${BASH_REMATCH[3]}
  [[ -v "readers[${secret}]" ]] || secrets+=("${secret}")
  readers[${secret}]+="${BASH_REMATCH[1]}:${BASH_REMATCH[2]} "
done

umask 077
tmp=""
trap 'rm -f "${tmp}"' EXIT

# place SOURCE FILE UID: FILE becomes a copy of SOURCE (SOURCE itself when they are the same path).
place() {
  local source=$1 file=$2 uid=$3
  tmp=$(mktemp "${file}.XXXXXX")
  cp "${source}" "${tmp}"
  chmod 0400 "${tmp}"
  chown "${uid}" "${tmp}"
  mv -f "${tmp}" "${file}"
  tmp=""
}

for secret in "${secrets[@]}"; do
  read -r -a consumers <<<"${readers[${secret}]}"
  held=""
  for consumer in "${consumers[@]}"; do
    service=${consumer%%:*} uid=${consumer#*:}
    mkdir -p "${dir}/${service}"
    chown "${uid}" "${dir}/${service}"
    chmod 0700 "${dir}/${service}"
    file=${dir}/${service}/${secret}
    if [[ -s ${file} ]]; then
      if [[ -z ${held} ]]; then
        held=${file}
      elif ! cmp -s "${held}" "${file}"; then
        echo "${secret}: ${held} and ${file} differ; remove the one the data was not set up with" >&2
        exit 1
      fi
    fi
  done

  action=kept
  if [[ -z ${held} ]]; then
    held=${dir}/${consumers[0]%%:*}/${secret}
    tmp=$(mktemp "${held}.XXXXXX")
    # tr ends on SIGPIPE once head has its characters: only the length of the result tells.
    { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom || true; } | head -c "${length}" >"${tmp}"
    if [[ $(wc -c <"${tmp}") -ne ${length} ]]; then
      echo "${secret}: could not read ${length} characters from /dev/urandom" >&2
      exit 1
    fi
    mv -f "${tmp}" "${held}"
    tmp=""
    action=generated
  fi
  for consumer in "${consumers[@]}"; do
    service=${consumer%%:*} uid=${consumer#*:}
    place "${held}" "${dir}/${service}/${secret}" "${uid}"
  done
  echo "${secret}: ${action}, copied for ${readers[${secret}]% } (service:uid)"
done
