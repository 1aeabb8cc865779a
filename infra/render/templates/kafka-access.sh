#!/bin/bash
# kafka-access.sh BOOTSTRAP SECRETS_DIR USER:OPERATION[+OPERATION...]:TOPIC...: who may do what on which topic
# (infra/services/kafka.py `access`), run as the admin (KAFKA_CLIENT_CONFIG, kafka-sasl-files.sh's
# admin.properties). Each user's SCRAM-SHA-512 credential is set from SECRETS_DIR/kafka-password-USER (its
# password, on tmpfs) and its ACLs are added; both are idempotent, so the unit runs it at every boot and a
# changed password (a new secret version) takes effect. The password goes through a Java argument file on
# tmpfs, never a command line. An ACL this script once added and the list no longer names stays: remove it
# with kafka-acls.sh --remove (docs/operations.md).
# KAFKA_BIN: where Kafka's tools are (the image's by default).
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 BOOTSTRAP SECRETS_DIR USER:OPERATION[+OPERATION...]:TOPIC..." >&2
  exit 2
fi
bootstrap=$1
secrets=$2
shift 2
bin=${KAFKA_BIN:-/opt/kafka/bin}
config=${KAFKA_CLIENT_CONFIG:?KAFKA_CLIENT_CONFIG must name the admin client config}
export KAFKA_HEAP_OPTS=-Xmx256m
# A file holding a password goes to a tmpfs (the container's /dev/shm), never a disk.
private=/dev/shm
[[ -d ${private} ]] || private=${TMPDIR:-/tmp}
args=$(umask 077 && mktemp -p "${private}")
trap 'rm -f "${args}"' EXIT

users=()
for spec in "$@"; do
  IFS=: read -r user operations topic <<<"${spec}"
  if [[ ! ${user} =~ ^[a-z][a-z0-9-]*$ || -z ${operations} || -z ${topic} ]]; then
    echo "$0: ${spec}: want USER:OPERATION[+OPERATION...]:TOPIC" >&2
    exit 2
  fi
  if [[ " ${users[*]} " != *" ${user} "* ]]; then
    users+=("${user}")
  fi
done

for user in "${users[@]}"; do
  password_file=${secrets}/kafka-password-${user}
  password=$(tr -d '[:space:]' <"${password_file}")
  if [[ -z ${password} || ${password} =~ [^A-Za-z0-9] ]]; then
    echo "$0: the password of ${user} (${password_file}) must be non-empty letters and digits" >&2
    exit 1
  fi
  printf '"%s"\n' kafka.admin.ConfigCommand --bootstrap-server "${bootstrap}" --command-config "${config}" \
    --alter --entity-type users --entity-name "${user}" \
    --add-config "SCRAM-SHA-512=[password=${password}]" >"${args}"
  "${bin}/kafka-run-class.sh" "@${args}"
done

for spec in "$@"; do
  IFS=: read -r user operations topic <<<"${spec}"
  flags=()
  IFS=+ read -ra wanted <<<"${operations}"
  for operation in "${wanted[@]}"; do
    flags+=(--operation "${operation}")
  done
  "${bin}/kafka-acls.sh" --bootstrap-server "${bootstrap}" --command-config "${config}" --add \
    --allow-principal "User:${user}" "${flags[@]}" --topic "${topic}"
done
