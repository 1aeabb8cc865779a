#!/bin/bash
# create-kafka-topics.sh CONTAINER SCRIPTS_DIR ARGS...: run kafka-setup.sh ARGS... (the topics, the users'
# passwords and ACLs) inside the broker's running container, from SCRIPTS_DIR, where the container has the
# scripts beside this one mounted. KAFKA_OPTS cleared: the broker's metrics agent option would make each
# tool's JVM bind the agent's port, which the broker holds.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONTAINER SCRIPTS_DIR ARGS..." >&2
  exit 2
fi
container=$1
scripts=$2
shift 2
exec docker exec --env KAFKA_OPTS= "${container}" bash "${scripts}/kafka-setup.sh" "$@"
