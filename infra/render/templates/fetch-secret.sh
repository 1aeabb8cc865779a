#!/bin/bash
# fetch-secret.sh SECRET DEST OWNER [WAIT_S]: write the latest version of a Secret Manager secret to DEST.
#   SECRET  resource name, projects/P/secrets/S
#   DEST    file on a tmpfs (the value never touches a disk), mode 0400, owned by OWNER (uid:gid)
#   WAIT_S  how long to wait for a first version (a scoped InfluxDB token is added by the InfluxDB VM
#           once InfluxDB is set up); 0 by default: a secret without one fails at once
# The value never appears in output, logs or on a command line: it flows through pipes only.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -lt 3 || $# -gt 4 || ! "${4:-0}" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 SECRET DEST OWNER [WAIT_S]" >&2
  exit 2
fi
secret=$1 dest=$2 owner=$3 wait_s=${4:-0}
readonly RETRY_S=10
if [[ ! "${secret}" =~ ^projects/[^/]+/secrets/[^/]+$ ]]; then
  echo "not a secret resource name: ${secret}" >&2
  exit 2
fi

dir=$(dirname "${dest}")
mkdir -p "${dir}"
chmod 0700 "${dir}"
if [[ "$(stat --file-system --format %T "${dir}")" != "tmpfs" ]]; then
  echo "refusing to write a secret outside a tmpfs: ${dir}" >&2
  exit 1
fi

umask 077
tmp=$(mktemp "${dest}.XXXXXX")
trap 'rm -f "${tmp}"' EXIT
deadline=$((SECONDS + wait_s))
until response=$(google_api_get "https://secretmanager.googleapis.com/v1/${secret}/versions/latest:access"); do
  if ((SECONDS + RETRY_S > deadline)); then
    echo "secret ${secret} has no readable version (waited ${wait_s} s)" >&2
    exit 1
  fi
  echo "secret ${secret} has no readable version yet: waiting" >&2
  sleep "${RETRY_S}"
done
data=$(printf '%s' "${response}" | sed -n 's/.*"data" *: *"\([^"]*\)".*/\1/p')
unset response
if [[ -z "${data}" ]]; then
  echo "secret ${secret} has no payload" >&2
  exit 1
fi
printf '%s' "${data}" | base64 --decode >"${tmp}"
unset data
chmod 0400 "${tmp}"
chown "${owner}" "${tmp}"
mv -f "${tmp}" "${dest}"
trap - EXIT
echo "secret ${secret} written to ${dest}"
