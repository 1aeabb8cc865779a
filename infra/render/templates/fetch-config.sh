#!/bin/bash
# fetch-config.sh [--restart UNIT]... [--textfile DIR] DATA_DIR INLINE_DIR BUNDLE VOLUME...: refresh the
# config volumes under DATA_DIR.
#   BUNDLE      metadata:KEY, the instance metadata key whose value is the Cloud Storage JSON API media
#               URL of a .tar.gz whose top-level folders are VOLUMEs; or - for inline files only
#   INLINE_DIR  INLINE_DIR/VOLUME/... files written by cloud-init, copied over the bundle's
#   --restart   refresh mode (a timer): do nothing while the bundle URL is the one last applied, else
#               apply it and restart these units if they run (their config is read at start)
#   --textfile  node-exporter's textfile directory: hydro_config_bundle_refused (1 while the bundle named
#               in metadata fails its check, else 0) goes there, and HydroConfigBundleRefused alerts on it
# The bundle URL lives in metadata, not in the cloud-config, so a new dashboard, rule or scrape target
# changes one metadata value in place and this script applies it: the VM is neither replaced nor
# rebooted. Each volume's content is replaced in place (running containers keep their bind mount).
# When the bundle cannot be downloaded but every volume holds a config from an earlier boot, that
# config is kept (with a warning) so the services still start.
# The bundle's object is named by its content's sha256 (<prefix>/<64 hex>.tar.gz): a download whose
# sha256 differs (a bundle replaced in the bucket) or a name without one is refused before anything of
# it is unpacked; the volumes keep what they hold and the script exits non-zero.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

restart=()
textfile_dir=
while [[ $# -gt 1 && "$1" == --* ]]; do
  case "$1" in
    --restart) restart+=("$2") ;;
    --textfile) textfile_dir=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
if [[ $# -lt 4 ]]; then
  echo "usage: $0 [--restart UNIT]... [--textfile DIR] DATA_DIR INLINE_DIR metadata:KEY|- VOLUME..." >&2
  exit 2
fi
data_dir=$1 inline_dir=$2 bundle=$3
shift 3
volumes=("$@")
applied="${data_dir}/.config-bundle-url"

# report_refused 0|1: the bundle check's verdict for node-exporter (written beside, then renamed: it
# never reads half a file, and skips names not ending .prom).
report_refused() {
  if [[ -z "${textfile_dir}" ]]; then
    return 0
  fi
  local metrics="${textfile_dir}/config-bundle.prom"
  cat >"${metrics}.tmp" <<EOF
# HELP hydro_config_bundle_refused 1 while the config bundle named in metadata fails its sha256 check.
# TYPE hydro_config_bundle_refused gauge
hydro_config_bundle_refused $1
EOF
  chmod 0644 "${metrics}.tmp"
  mv "${metrics}.tmp" "${metrics}"
}

refuse_bundle() {
  echo "REFUSED config bundle ${bundle_url}: $1; nothing of it applied" >&2
  report_refused 1
  exit 1
}

keep_earlier_config() {
  for volume in "${volumes[@]}"; do
    if [[ -z "$(ls -A "${data_dir}/${volume}" 2>/dev/null)" ]]; then
      echo "$1 and ${volume} has no earlier config" >&2
      exit 1
    fi
  done
  echo "warning: $1; keeping the config of an earlier boot" >&2
  exit 0
}

bundle_url=-
if [[ "${bundle}" == metadata:* ]]; then
  if ! bundle_url=$(metadata_get "instance/attributes/${bundle#metadata:}"); then
    keep_earlier_config "cannot read the config bundle's URL from metadata key ${bundle#metadata:}"
  fi
  if [[ ! "${bundle_url}" =~ ^https://storage\.googleapis\.com/storage/v1/b/[^/]+/o/[^/]+\?alt=media$ ]]; then
    echo "metadata key ${bundle#metadata:} is not a Cloud Storage media URL: ${bundle_url}" >&2
    exit 1
  fi
  # The object name's last part (after an encoded `/`, %2F) is <sha256>.tar.gz.
  if [[ ! "${bundle_url}" =~ /o/([^/?]*%2F)?([0-9a-f]{64})\.tar\.gz\?alt=media$ ]]; then
    refuse_bundle "its object is not named <sha256>.tar.gz, so its content cannot be checked"
  fi
  expected_sha256=${BASH_REMATCH[2]}
elif [[ "${bundle}" != "-" ]]; then
  echo "BUNDLE must be metadata:KEY or -, got ${bundle}" >&2
  exit 2
fi
if [[ ${#restart[@]} -gt 0 && -f "${applied}" && "$(cat "${applied}")" == "${bundle_url}" ]]; then
  # Checked when it was applied; metadata may have gone back to it after a refused one.
  report_refused 0
  echo "config bundle unchanged"
  exit 0
fi

staging=$(mktemp -d "${data_dir}/.config.XXXXXX")
trap 'rm -rf "${staging}"' EXIT
mkdir "${staging}/new"

if [[ "${bundle_url}" != "-" ]]; then
  if ! google_api_get "${bundle_url}" --output "${staging}/bundle.tar.gz"; then
    keep_earlier_config "cannot download the config bundle"
  fi
  actual_sha256=$(sha256sum "${staging}/bundle.tar.gz" | cut -d ' ' -f 1)
  if [[ "${actual_sha256}" != "${expected_sha256}" ]]; then
    refuse_bundle "its content's sha256 is ${actual_sha256}, its name says ${expected_sha256}"
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
printf '%s' "${bundle_url}" >"${applied}"
if [[ "${bundle_url}" != "-" ]]; then
  report_refused 0
fi
if [[ ${#restart[@]} -gt 0 ]]; then
  # --no-block: a unit waiting for this one at boot must not deadlock; try-: stopped units stay stopped.
  systemctl try-restart --no-block "${restart[@]}"
  echo "restarted ${restart[*]} for config bundle ${bundle_url}"
fi
