#!/bin/bash
# fetch-agent.sh URL SHA256 CACHE_DIR DEST: put a Java agent's jar at DEST, its bytes checked first.
#   URL        the Cloud Storage JSON API media URL of the jar Pulumi uploaded (the agent bucket)
#   SHA256     the sha256 infra/release/broker-agent.lock pins for it
#   CACHE_DIR  on the boot disk's stateful /var: a checked jar kept as <SHA256>.jar, so a reboot needs no
#              download (and the broker starts while Cloud Storage does not answer)
#   DEST       the file the container reads (mounted read-only), replaced only by a checked jar
# A cached copy is checked again before use; a copy or a download whose sha256 differs is refused and
# nothing is written to DEST: the script exits non-zero and the container does not start.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -ne 4 ]]; then
  echo "usage: $0 URL SHA256 CACHE_DIR DEST" >&2
  exit 2
fi
url=$1 sha256=$2 cache_dir=$3 dest=$4
if [[ ! "${sha256}" =~ ^[0-9a-f]{64}$ ]]; then
  echo "not a sha256: ${sha256}" >&2
  exit 2
fi
if [[ ! "${url}" =~ ^https://storage\.googleapis\.com/storage/v1/b/[^/]+/o/[^/]+\?alt=media$ ]]; then
  echo "not a Cloud Storage media URL: ${url}" >&2
  exit 2
fi

sha256_of() {
  sha256sum "$1" | cut -d ' ' -f 1
}

mkdir -p "${cache_dir}" "$(dirname "${dest}")"
cached="${cache_dir}/${sha256}.jar"
if [[ -f "${cached}" && "$(sha256_of "${cached}")" != "${sha256}" ]]; then
  echo "cached ${cached} does not have sha256 ${sha256}: downloading it again" >&2
  rm -f "${cached}"
fi
if [[ ! -f "${cached}" ]]; then
  partial=$(mktemp "${cache_dir}/.download.XXXXXX")
  trap 'rm -f "${partial}"' EXIT
  google_api_get "${url}" --output "${partial}"
  actual=$(sha256_of "${partial}")
  if [[ "${actual}" != "${sha256}" ]]; then
    echo "REFUSED ${url}: its sha256 is ${actual}, the lock pins ${sha256}" >&2
    exit 1
  fi
  mv "${partial}" "${cached}"
fi
install -m 0444 "${cached}" "${dest}.tmp"
mv "${dest}.tmp" "${dest}"
echo "agent ${dest}: sha256 ${sha256}"
