#!/usr/bin/env bash
# restore-influxdb.sh STACK BACKUP [--into-bucket NEW_BUCKET]
# Restores a GCP stack's InfluxDB from one of its daily backups (docs/operations.md, "Backups and restore").
# BACKUP: `latest`, an object name of the stack's backup bucket (influxdb-YYYYMMDDTHHMMSSZ.tar.gz), or a
# gs:// URI (another stack's backup, say). The backup is downloaded here, checked, streamed to the InfluxDB
# VM over IAP SSH and unpacked inside the container, where `influx restore` runs (influxdb-restore.sh,
# shipped to the VM by its cloud-init).
#   default        `influx restore --full`: every bucket, user and token becomes the backup's; writes made
#                  since the backup are lost. Asks for the stack name to be typed.
#   --into-bucket  copies the backup's data of the stack's bucket into the new bucket NEW_BUCKET and changes
#                  nothing else. Asks for "yes". NEW_BUCKET may be the stack's bucket once it is lost (deleted):
#                  then its scoped tokens are made again, as after a full restore.
# Needs gcloud signed in as someone who may read the backup bucket and SSH to the VM through IAP, and the
# project's virtualenv (make venv): the stack's names come from infra/, not from this script.
set -euo pipefail

usage() {
  echo "usage: $0 dev|staging|prod latest|influxdb-YYYYMMDDTHHMMSSZ.tar.gz|gs://BUCKET/OBJECT [--into-bucket NEW_BUCKET]" >&2
  exit 2
}
fail() {
  echo "restore-influxdb: $*" >&2
  exit 1
}
[[ $# -eq 2 || ($# -eq 4 && $3 == --into-bucket) ]] || usage
stack=$1 backup=$2 new_bucket=${4:-}
case $stack in
  dev | staging | prod) ;;
  *)
    echo "restore-influxdb: STACK must be dev, staging or prod, got '$stack' (the local stack has no backups)" >&2
    usage
    ;;
esac
if [[ $# -eq 4 && ! $new_bucket =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$ ]]; then
  fail "NEW_BUCKET '$new_bucket': use letters, digits, '.', '_' and '-'"
fi

cd "$(dirname "$0")/.."
# shellcheck source=scripts/stack-target.sh
source scripts/stack-target.sh
load_target restore_target "$stack" project zone instance backup_bucket influxdb_bucket restore_command \
  monitoring_instance grafana_unit

case $backup in
  latest)
    # Object names hold the UTC time, so the last in order is the newest.
    uri=$(gcloud storage ls "gs://${target[backup_bucket]}/influxdb-*.tar.gz" | sort | tail -n 1)
    [[ -n $uri ]] || fail "gs://${target[backup_bucket]} holds no backup"
    ;;
  gs://*) uri=$backup ;;
  influxdb-*.tar.gz) uri="gs://${target[backup_bucket]}/$backup" ;;
  *) usage ;;
esac
object=${uri##*/}
name=${object%.tar.gz}
[[ $name =~ ^influxdb-[0-9]{8}T[0-9]{6}Z$ && $object == "$name.tar.gz" ]] \
  || fail "'$uri' is not a backup: its object name must be influxdb-YYYYMMDDTHHMMSSZ.tar.gz"

work=$(mktemp -d)
trap 'rm -rf -- "$work"' EXIT
archive="$work/$object"
gcloud storage cp "$uri" "$archive" || fail "could not download $uri"
tar -tzf "$archive" >"$work/entries" || fail "$uri is not a readable .tar.gz"
if grep -qv "^$name/" "$work/entries"; then
  fail "$uri holds entries outside $name/: not a backup made by influxdb-backup.sh"
fi
grep -q "^$name/[^/]*\.manifest$" "$work/entries" || fail "$uri holds no $name/*.manifest: not an influx backup"

instance=${target[instance]}
if [[ -z $new_bucket ]]; then
  echo "This REPLACES every bucket, user and token of InfluxDB on $instance (project ${target[project]})"
  echo "with the backup $uri. Everything written since that backup is lost."
  read -r -p "Type the stack name ($stack) to continue: " answer || answer=
  [[ $answer == "$stack" ]] || fail "not confirmed: nothing was changed"
  remote="sudo ${target[restore_command]} $name full"
else
  echo "This copies bucket ${target[influxdb_bucket]} of the backup $uri into the new bucket $new_bucket"
  echo "of InfluxDB on $instance (project ${target[project]}). Nothing else changes."
  read -r -p "Type yes to continue: " answer || answer=
  [[ $answer == yes ]] || fail "not confirmed: nothing was changed"
  remote="sudo ${target[restore_command]} $name bucket $(printf '%q' "${target[influxdb_bucket]}") $(printf '%q' "$new_bucket")"
fi

gcloud compute ssh "$instance" --project "${target[project]}" --zone "${target[zone]}" --tunnel-through-iap \
  --command "$remote" <"$archive" || fail "the restore on $instance failed (its output is above); see docs/operations.md"
echo "restore-influxdb: done."
if [[ -z $new_bucket || $new_bucket == "${target[influxdb_bucket]}" ]]; then
  echo "Next: the running consumer and Grafana still hold the tokens of before; see docs/operations.md:"
  echo "  make resubmit STACK=$stack JOB=consumer"
  echo "  gcloud compute ssh ${target[monitoring_instance]} --project ${target[project]} --zone ${target[zone]} \\"
  echo "    --tunnel-through-iap --command 'sudo systemctl restart ${target[grafana_unit]}'"
fi
