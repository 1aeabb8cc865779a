#!/bin/bash
# host-env.sh FILE: write facts about this VM, read from the metadata server, as a systemd
# EnvironmentFile, so units can use them (Kafka advertises the internal IP it reads here).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -ne 1 ]]; then
  echo "usage: $0 FILE" >&2
  exit 2
fi
file=$1
ip=$(metadata_get "instance/network-interfaces/0/ip")
if [[ ! "${ip}" =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ ]]; then
  echo "the metadata server returned no IPv4 address: ${ip}" >&2
  exit 1
fi
mkdir -p "$(dirname "${file}")"
printf 'HOST_INTERNAL_IP=%s\n' "${ip}" >"${file}.tmp"
mv -f "${file}.tmp" "${file}"
echo "HOST_INTERNAL_IP=${ip}"
