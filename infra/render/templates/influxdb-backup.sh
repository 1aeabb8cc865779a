#!/bin/bash
# influxdb-backup.sh CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR BUCKET BACKUP_ACCOUNT TEXTFILE_DIR
# On the InfluxDB VM, from its daily timer: `influx backup` inside the running container (influx-archive.sh,
# shipped beside this script) into CONTAINER_DIR, which is HOST_DIR on the data disk, then a .tar.gz of it
# uploaded to gs://BUCKET/influxdb-<UTC time>.tar.gz as BACKUP_ACCOUNT. The VM's own account may only
# mint that account's tokens; the backup account may only create objects in BUCKET (no read, overwrite
# or delete: `ifGenerationMatch=0` and the bucket's versioning keep every earlier backup).
# After an upload, the time and size of this last good backup go to TEXTFILE_DIR/influxdb-backup.prom
# (node-exporter's textfile collector): Prometheus alerts when it grows old (HydroInfluxDBBackupStale).
# A failed run leaves the previous file alone, so the time it shows keeps ageing.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -ne 7 ]]; then
  echo "usage: $0 CONTAINER OPERATOR_TOKEN_FILE HOST_DIR CONTAINER_DIR BUCKET BACKUP_ACCOUNT TEXTFILE_DIR" >&2
  exit 2
fi
container=$1 token_file=$2 host_dir=$3 container_dir=$4 bucket=$5 account=$6 textfile_dir=$7
if [[ ! -d "${textfile_dir}" ]]; then
  echo "no textfile directory ${textfile_dir}: node-exporter's volume is missing" >&2
  exit 2
fi
if [[ ! "${bucket}" =~ ^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$ ]]; then
  echo "not a bucket name: ${bucket}" >&2
  exit 2
fi
if [[ ! "${account}" =~ ^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.iam\.gserviceaccount\.com$ ]]; then
  echo "not a service account email: ${account}" >&2
  exit 2
fi

# backup_token: an access token of the backup account, minted with the VM account's token.
backup_token() {
  local response token
  response=$(printf '{"scope":["https://www.googleapis.com/auth/devstorage.read_write"]}' \
    | google_api_post \
      "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${account}:generateAccessToken")
  token=$(printf '%s' "${response}" | tr -d ' \t\r\n' | sed -n 's/.*"accessToken":"\([^"]*\)".*/\1/p')
  if [[ -z "${token}" ]]; then
    echo "no access token for ${account} (does the VM's account hold iam.serviceAccounts.getAccessToken on it?)" >&2
    return 1
  fi
  printf '%s' "${token}"
}

name="influxdb-$(date -u +%Y%m%dT%H%M%SZ)"
archive="${host_dir}/${name}.tar.gz"
# Leftovers of an interrupted run go first; nothing stays on the data disk afterwards.
rm -rf -- "${host_dir}"
trap 'rm -rf -- "${host_dir}"' EXIT

docker exec -i "${container}" bash -s -- "${token_file}" backup "${container_dir}/${name}" \
  <"$(dirname "$0")/influx-archive.sh"
manifests=("${host_dir}/${name}"/*.manifest)
if [[ ! -f "${manifests[0]}" ]]; then
  echo "influx backup wrote no manifest into ${host_dir}/${name}: not uploading" >&2
  exit 1
fi
tar -C "${host_dir}" -czf "${archive}" "${name}"
size=$(stat -c %s "${archive}")

token=$(backup_token)
printf 'header = "Authorization: Bearer %s"\n' "${token}" \
  | curl --silent --show-error --fail --retry 5 --retry-connrefused --retry-delay 10 \
    --config - --request POST --header "Content-Type: application/gzip" --upload-file "${archive}" \
    "https://storage.googleapis.com/upload/storage/v1/b/${bucket}/o?uploadType=media&ifGenerationMatch=0&name=${name}.tar.gz" \
    >/dev/null
unset token
echo "uploaded gs://${bucket}/${name}.tar.gz (${size} bytes)"

# Written beside, then renamed: node-exporter never reads half a file (it skips names not ending .prom).
metrics="${textfile_dir}/influxdb-backup.prom"
cat >"${metrics}.tmp" <<EOF
# HELP hydro_influxdb_backup_last_success_timestamp_seconds When the last InfluxDB backup was uploaded.
# TYPE hydro_influxdb_backup_last_success_timestamp_seconds gauge
hydro_influxdb_backup_last_success_timestamp_seconds $(date -u +%s)
# HELP hydro_influxdb_backup_last_size_bytes Size of the last uploaded InfluxDB backup archive.
# TYPE hydro_influxdb_backup_last_size_bytes gauge
hydro_influxdb_backup_last_size_bytes ${size}
EOF
chmod 0644 "${metrics}.tmp"
mv -f -- "${metrics}.tmp" "${metrics}"
