#!/bin/bash
# influx-archive.sh OPERATOR_TOKEN_FILE backup DIR
# influx-archive.sh OPERATOR_TOKEN_FILE restore-full DIR
# influx-archive.sh OPERATOR_TOKEN_FILE restore-bucket DIR BUCKET NEW_BUCKET
# Runs inside the InfluxDB container (docker exec -i ... bash -s): `influx backup` of everything (every
# bucket's data and the metadata: orgs, users, tokens) into DIR, or `influx restore` from such a DIR:
# --full replaces the server's data and metadata; restore-bucket copies one bucket's data into a new
# bucket and touches nothing else. The operator token travels from its file to the CLI's environment.
set -euo pipefail

usage() {
  echo "usage: $0 OPERATOR_TOKEN_FILE backup|restore-full DIR" >&2
  echo "       $0 OPERATOR_TOKEN_FILE restore-bucket DIR BUCKET NEW_BUCKET" >&2
  exit 2
}
[[ $# -ge 3 ]] || usage
token_file=$1 operation=$2 dir=$3
case ${operation} in
  backup | restore-full) [[ $# -eq 3 ]] || usage ;;
  restore-bucket) [[ $# -eq 5 ]] || usage ;;
  *) usage ;;
esac
IFS= read -r INFLUX_TOKEN <"${token_file}" || [[ -n "${INFLUX_TOKEN:-}" ]]
if [[ -z "${INFLUX_TOKEN}" ]]; then
  echo "the operator token file ${token_file} is empty" >&2
  exit 1
fi
export INFLUX_TOKEN

case ${operation} in
  backup)
    if [[ -e "${dir}" ]]; then
      echo "${dir} already exists: refusing to mix two backups" >&2
      exit 1
    fi
    mkdir -p "$(dirname "${dir}")"
    influx backup "${dir}"
    ;;
  restore-full)
    influx restore --full "${dir}"
    ;;
  restore-bucket)
    influx restore --bucket "$4" --new-bucket "$5" "${dir}"
    ;;
esac
