#!/bin/bash
# Sourced by the other scripts: the GCE metadata server and an OAuth access token from it.
# The token never reaches a command line: it is handed to curl through its config on stdin.
set -euo pipefail

readonly METADATA_URL="http://metadata.google.internal/computeMetadata/v1"

# metadata_get PATH: print one metadata value (PATH relative to computeMetadata/v1).
metadata_get() {
  curl --silent --show-error --fail --retry 10 --retry-connrefused --retry-delay 2 \
    --header "Metadata-Flavor: Google" "${METADATA_URL}/$1"
}

# access_token: print the VM service account's access token.
access_token() {
  local token
  token=$(metadata_get "instance/service-accounts/default/token" \
    | sed -n 's/.*"access_token" *: *"\([^"]*\)".*/\1/p')
  if [[ -z "${token}" ]]; then
    echo "no access token from the metadata server" >&2
    return 1
  fi
  printf '%s' "${token}"
}

# google_api_get URL [CURL_OPTION...]: GET a Google API URL with the access token.
google_api_get() {
  local url=$1 token
  shift
  token=$(access_token)
  printf 'header = "Authorization: Bearer %s"\n' "${token}" \
    | curl --silent --show-error --fail --retry 10 --retry-connrefused --retry-delay 3 \
      --config - "$@" "${url}"
}

# google_api_post URL: POST the JSON body read from stdin to a Google API URL with the access token.
# The header travels through a file descriptor, the body through stdin: neither is on a command line.
google_api_post() {
  local url=$1 token
  token=$(access_token)
  curl --silent --show-error --fail --retry 5 --retry-connrefused --retry-delay 3 \
    --config <(printf 'header = "Authorization: Bearer %s"\n' "${token}") \
    --header "Content-Type: application/json" --data-binary @- "${url}"
}
