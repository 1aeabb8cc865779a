#!/bin/bash
# influxdb-token.sh OPERATOR_TOKEN_FILE USER ORG BUCKET ACCESS DESCRIPTION: print an InfluxDB token
# that may only ACCESS (read or write) BUCKET. Runs inside a container of the InfluxDB image (the
# InfluxDB VM's own container; the local stack's one-shot), with the operator token as a file.
# Idempotent: a token with the same DESCRIPTION is reused, so a reboot or a new deploy hands out the
# same token. INFLUX_HOST: the server (the influx CLI's default, http://localhost:8086, otherwise).
# The token goes to stdout only (a pipe); it is never logged or put on a command line.
set -euo pipefail

if [[ $# -ne 6 || ! "$5" =~ ^(read|write)$ || ! "$6" =~ ^[a-z0-9-]+$ ]]; then
  echo "usage: $0 OPERATOR_TOKEN_FILE USER ORG BUCKET read|write DESCRIPTION([a-z0-9-])" >&2
  exit 2
fi
token_file=$1 user=$2 org=$3 bucket=$4 access=$5 description=$6
# The influx CLI reads its token from the environment of this process only.
IFS= read -r INFLUX_TOKEN <"${token_file}" || [[ -n "${INFLUX_TOKEN:-}" ]]
export INFLUX_TOKEN

for attempt in $(seq 60); do
  if influx ping >/dev/null 2>&1; then
    break
  fi
  if [[ ${attempt} -eq 60 ]]; then
    echo "InfluxDB ${INFLUX_HOST:-http://localhost:8086} did not answer" >&2
    exit 1
  fi
  sleep 5
done

# --json prints each token as {"id", "description", "token", ...} in that order (influx-cli
# clients/auth); descriptions and tokens hold no whitespace, so without it one pattern finds it.
compact() { tr -d ' \t\r\n'; }
# A failing CLI stops the script (set -e): never create a second token because a listing failed.
auths=$(influx auth list --org "${org}" --json)
existing=$(printf '%s' "${auths}" | compact \
  | grep -o "\"description\":\"${description}\",\"token\":\"[^\"]*\"" | head -n 1 || true)
unset auths
if [[ -n "${existing}" ]]; then
  echo "reusing the ${access} token ${description}" >&2
  printf '%s' "${existing##*\"token\":\"}" | tr -d '"'
  exit 0
fi
buckets=$(influx bucket list --org "${org}" --name "${bucket}" --json)
bucket_id=$(printf '%s' "${buckets}" | compact | grep -o '"id":"[0-9a-f]\{16\}"' | head -n 1 \
  | cut -d '"' -f 4 || true)
if [[ -z "${bucket_id}" ]]; then
  echo "InfluxDB has no bucket ${bucket} in org ${org}" >&2
  exit 1
fi
created=$(influx auth create --org "${org}" --user "${user}" --description "${description}" \
  "--${access}-bucket" "${bucket_id}" --json)
created=$(printf '%s' "${created}" | compact | grep -o '"token":"[^"]*"' | head -n 1 || true)
if [[ -z "${created}" ]]; then
  echo "influx auth create returned no token for ${description}" >&2
  exit 1
fi
echo "created the ${access} token ${description} for bucket ${bucket}" >&2
printf '%s' "${created#\"token\":\"}" | tr -d '"'
