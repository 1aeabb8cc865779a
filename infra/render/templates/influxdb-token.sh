#!/bin/bash
# influxdb-token.sh OPERATOR_TOKEN_FILE USER ORG BUCKET ACCESS DESCRIPTION: print an InfluxDB token
# that may only ACCESS (read or write) BUCKET. Runs inside a container of the InfluxDB image (the
# InfluxDB VM's own container; the local stack's one-shot), with the operator token as a file.
# Idempotent: a token with the same DESCRIPTION that still grants ACCESS to BUCKET is reused, so a
# reboot or a new deploy hands out the same token; one of that DESCRIPTION for another bucket id is
# deleted. INFLUX_HOST: the server (the influx CLI's default, http://localhost:8086, otherwise).
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

compact() { tr -d ' \t\r\n'; }
buckets=$(influx bucket list --org "${org}" --name "${bucket}" --json)
bucket_id=$(printf '%s' "${buckets}" | compact | grep -o '"id":"[0-9a-f]\{16\}"' | head -n 1 \
  | cut -d '"' -f 4 || true)
if [[ -z "${bucket_id}" ]]; then
  echo "InfluxDB has no bucket ${bucket} in org ${org}" >&2
  exit 1
fi

# --json prints each token as {"id", "description", "token", "status", "userName", "userID",
# "permissions"} in that order (influx-cli clients/auth); ids, descriptions and tokens hold no
# whitespace, so without it one pattern finds a token. A token is reused only while it grants ACCESS
# to the bucket's current id: a bucket deleted and made again (a restore into its own name) has a new
# id, and InfluxDB keeps the old tokens, which then get 403.
# A failing CLI stops the script (set -e): never create a second token because a listing failed.
auths=$(influx auth list --org "${org}" --json | compact)
wanted="\"description\":\"${description}\",\"token\":\"[^\"]*\",\"status\":\"active\","
wanted+="\"userName\":\"[^\"]*\",\"userID\":\"[0-9a-f]*\","
wanted+="\"permissions\":\[\"${access}:orgs/[0-9a-f]*/buckets/${bucket_id}\"\]"
current=$(printf '%s' "${auths}" | grep -o "${wanted}" | head -n 1 || true)
if [[ -n "${current}" ]]; then
  unset auths
  echo "reusing the ${access} token ${description}" >&2
  current=${current#*\"token\":\"}
  printf '%s' "${current%%\"*}"
  exit 0
fi
# Any other token of that description is for a bucket id that no longer holds the data: it goes, so
# the description names one token again.
for stale in $(printf '%s' "${auths}" | grep -o "\"id\":\"[0-9a-f]*\",\"description\":\"${description}\"" \
  | cut -d '"' -f 4 || true); do
  influx auth delete --id "${stale}" >/dev/null
  echo "deleted the ${access} token ${description} (${stale}): not for bucket ${bucket} (${bucket_id})" >&2
done
unset auths
created=$(influx auth create --org "${org}" --user "${user}" --description "${description}" \
  "--${access}-bucket" "${bucket_id}" --json)
created=$(printf '%s' "${created}" | compact | grep -o '"token":"[^"]*"' | head -n 1 || true)
if [[ -z "${created}" ]]; then
  echo "influx auth create returned no token for ${description}" >&2
  exit 1
fi
echo "created the ${access} token ${description} for bucket ${bucket}" >&2
printf '%s' "${created#\"token\":\"}" | tr -d '"'
