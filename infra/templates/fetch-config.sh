#!/bin/bash
# fetch-config.sh DATA_DIR INLINE_DIR BUNDLE_URL|- VOLUME...: refresh the config volumes under DATA_DIR.
#   BUNDLE_URL  a Cloud Storage JSON API media URL of a .tar.gz whose top-level folders are VOLUMEs
#   INLINE_DIR  INLINE_DIR/VOLUME/... files written by cloud-init, copied over the bundle's
# Each volume's content is replaced in place (running containers keep their bind mount). When the
# bundle cannot be downloaded but every volume holds a config from an earlier boot, that config
# is kept (with a warning) so the services still start.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -lt 4 ]]; then
  echo "usage: $0 DATA_DIR INLINE_DIR BUNDLE_URL|- VOLUME..." >&2
  exit 2
fi
data_dir=$1 inline_dir=$2 bundle_url=$3
shift 3
volumes=("$@")

staging=$(mktemp -d "${data_dir}/.config.XXXXXX")
trap 'rm -rf "${staging}"' EXIT
mkdir "${staging}/new"

if [[ "${bundle_url}" != "-" ]]; then
  if ! google_api_get "${bundle_url}" --output "${staging}/bundle.tar.gz"; then
    for volume in "${volumes[@]}"; do
      if [[ -z "$(ls -A "${data_dir}/${volume}" 2>/dev/null)" ]]; then
        echo "cannot download the config bundle and ${volume} has no earlier config" >&2
        exit 1
      fi
    done
    echo "warning: cannot download the config bundle; keeping the config of an earlier boot" >&2
    exit 0
  fi
  tar --extract --gzip --no-same-owner --file "${staging}/bundle.tar.gz" --directory "${staging}/new"
  shopt -s nullglob
  for entry in "${staging}/new"/*; do
    name=$(basename "${entry}")
    if [[ ! -d "${entry}" ]] || [[ ! " ${volumes[*]} " =~ [[:space:]]${name}[[:space:]] ]]; then
      echo "the config bundle holds ${name}, which is not a config volume (${volumes[*]})" >&2
      exit 1
    fi
  done
fi

for volume in "${volumes[@]}"; do
  mkdir -p "${staging}/new/${volume}" "${data_dir}/${volume}"
  if [[ -d "${inline_dir}/${volume}" ]]; then
    cp -R "${inline_dir}/${volume}/." "${staging}/new/${volume}/"
  fi
  find "${data_dir}/${volume}" -mindepth 1 -delete
  cp -R "${staging}/new/${volume}/." "${data_dir}/${volume}/"
  chmod -R u=rwX,go=rX "${data_dir}/${volume}"
  echo "config volume ${volume} refreshed"
done
