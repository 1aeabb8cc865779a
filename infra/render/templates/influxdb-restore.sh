#!/bin/bash
# influxdb-restore.sh CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR NAME full
# influxdb-restore.sh CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR NAME bucket BUCKET NEW_BUCKET
# On the InfluxDB VM, run by scripts/restore-influxdb.sh over IAP SSH with a backup's .tar.gz on stdin
# (one folder NAME made by influxdb-backup.sh): unpacks it inside the container into CONTAINER_DIR
# (HOST_DIR on the data disk), then `influx restore` (influx-archive.sh, shipped beside this script).
# `full` replaces every bucket and the metadata (users, tokens) with the backup's and then re-publishes
# the scoped tokens to Secret Manager; `bucket` copies BUCKET's data into NEW_BUCKET (which must not exist) and
# changes nothing else, unless NEW_BUCKET is BUCKET (the bucket was lost): then its scoped tokens are made again.
set -euo pipefail

usage() {
  echo "usage: $0 CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR NAME full" >&2
  echo "       $0 CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR NAME bucket BUCKET NEW_BUCKET" >&2
  exit 2
}
[[ $# -ge 6 ]] || usage
container=$1 token_file=$2 host_dir=$3 container_dir=$4 name=$5 mode=$6
case ${mode} in
  full) [[ $# -eq 6 ]] || usage ;;
  bucket) [[ $# -eq 8 ]] || usage ;;
  *) usage ;;
esac
if [[ ! "${name}" =~ ^influxdb-[0-9]{8}T[0-9]{6}Z$ ]]; then
  echo "not a backup name (influxdb-YYYYMMDDTHHMMSSZ): ${name}" >&2
  exit 2
fi
if ! docker inspect --format '{{.State.Running}}' "${container}" 2>/dev/null | grep -qx true; then
  echo "the ${container} container is not running: start it (systemctl start hydrostream-${container})" >&2
  exit 1
fi

rm -rf -- "${host_dir}"
trap 'rm -rf -- "${host_dir}"' EXIT
# Unpacked by the container's own user, so the files are its own; the archive arrives on stdin.
# shellcheck disable=SC2016 # $1 is expanded by the container's shell
docker exec -i "${container}" sh -c 'mkdir -p "$1" && tar -xzf - -C "$1"' sh "${container_dir}"
manifests=("${host_dir}/${name}"/*.manifest)
if [[ ! -f "${manifests[0]}" ]]; then
  echo "the archive holds no ${name}/*.manifest: not a backup made by influxdb-backup.sh" >&2
  exit 1
fi

archive_script="$(dirname "$0")/influx-archive.sh"
if [[ ${mode} == full ]]; then
  docker exec -i "${container}" bash -s -- "${token_file}" restore-full "${container_dir}/${name}" \
    <"${archive_script}"
  # The restored metadata holds the tokens of the backup's day: publish those the jobs and Grafana read.
  systemctl restart hydrostream-influxdb-tokens.service
  echo "restored everything from ${name}; scoped tokens re-published"
else
  docker exec -i "${container}" bash -s -- "${token_file}" restore-bucket "${container_dir}/${name}" "$7" "$8" \
    <"${archive_script}"
  if [[ $7 == "$8" ]]; then
    # A lost bucket restored under its own name has a new id: its scoped tokens are made again.
    systemctl restart hydrostream-influxdb-tokens.service
    echo "restored the lost bucket $7 of ${name} under its name; scoped tokens re-created and published"
  else
    echo "restored bucket $7 of ${name} into the new bucket $8"
  fi
fi
