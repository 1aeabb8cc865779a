#!/bin/bash
# kafka-setup.sh BOOTSTRAP ADMIN_USER SECRETS_DIR TOPIC_SPEC... -- ACCESS_SPEC...: make the stack's topics
# (kafka-topics.sh) and give each Kafka user its password and ACLs (kafka-access.sh), logged in as the admin.
# Runs inside a container of the Kafka image: the broker's own on a VM (hydrostream-kafka-topics.service,
# `docker exec` at every boot), a one-shot container on the local stack. SECRETS_DIR holds each user's
# password as kafka-password-USER (infra/catalog.py `kafka_password`); the admin's login files are made from
# its password into a private folder on tmpfs, removed on exit. Every step is idempotent.
set -euo pipefail

usage() {
  echo "usage: $0 BOOTSTRAP ADMIN_USER SECRETS_DIR TOPIC_SPEC... -- ACCESS_SPEC..." >&2
  exit 2
}
[[ $# -ge 3 ]] || usage
bootstrap=$1
admin=$2
secrets=$3
shift 3
topics=()
while [[ $# -gt 0 && $1 != -- ]]; do
  topics+=("$1")
  shift
done
[[ $# -ge 2 && ${#topics[@]} -ge 1 ]] || usage
shift
here=$(cd "$(dirname "$0")" && pwd)
# The tools run beside the broker, not with its heap (a broker container's KAFKA_HEAP_OPTS is the broker's).
export KAFKA_HEAP_OPTS=-Xmx256m
private=/dev/shm
[[ -d ${private} ]] || private=${TMPDIR:-/tmp}
sasl=$(umask 077 && mktemp -d -p "${private}")
trap 'rm -rf "${sasl}"' EXIT

bash "${here}/kafka-sasl-files.sh" "${admin}" "${secrets}/kafka-password-${admin}" "${sasl}"
export KAFKA_CLIENT_CONFIG=${sasl}/admin.properties
bash "${here}/kafka-topics.sh" "${bootstrap}" "${topics[@]}"
bash "${here}/kafka-access.sh" "${bootstrap}" "${secrets}" "$@"
