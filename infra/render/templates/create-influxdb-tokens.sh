#!/bin/bash
# create-influxdb-tokens.sh CONTAINER OPERATOR_TOKEN_FILE USER ORG BUCKET STATE_DIR ACCESS:DESCRIPTION:SECRET...
# On the InfluxDB VM: get each scoped token from the running InfluxDB container (influxdb-token.sh,
# shipped beside this script, run inside it) and add it as a version of its Secret Manager secret
# (projects/P/secrets/S), where its one reader fetches it. A token already added (its digest in
# STATE_DIR, on the data disk) is not added again. The operator token stays in the container; the
# scoped tokens flow through pipes only.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -lt 7 ]]; then
  echo "usage: $0 CONTAINER OPERATOR_TOKEN_FILE USER ORG BUCKET STATE_DIR ACCESS:DESCRIPTION:SECRET..." >&2
  exit 2
fi
container=$1 token_file=$2 user=$3 org=$4 bucket=$5 state=$6
shift 6
mkdir -p "${state}"
chmod 0700 "${state}"

for spec in "$@"; do
  IFS=: read -r access description secret <<<"${spec}"
  if [[ ! "${secret}" =~ ^projects/[^/]+/secrets/[^/]+$ ]]; then
    echo "not ACCESS:DESCRIPTION:projects/P/secrets/S: ${spec}" >&2
    exit 2
  fi
  token=$(docker exec -i "${container}" bash -s -- "${token_file}" "${user}" "${org}" "${bucket}" \
    "${access}" "${description}" <"$(dirname "$0")/influxdb-token.sh")
  if [[ -z "${token}" ]]; then
    echo "no ${access} token from InfluxDB" >&2
    exit 1
  fi
  digest=$(printf '%s' "${token}" | sha256sum)
  digest=${digest%% *}
  stamp="${state}/${secret##*/}.sha256"
  if [[ -f "${stamp}" && "$(<"${stamp}")" == "${digest}" ]]; then
    echo "${secret} already holds the ${access} token"
    continue
  fi
  printf '{"payload":{"data":"%s"}}' "$(printf '%s' "${token}" | base64 --wrap=0)" \
    | google_api_post "https://secretmanager.googleapis.com/v1/${secret}:addVersion" >/dev/null
  unset token
  printf '%s' "${digest}" >"${stamp}"
  echo "added the ${access} token to ${secret}"
done
