#!/bin/bash
# create-kafka-topics.sh CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS...: run kafka-topics.sh,
# shipped beside this script, inside the broker's running container (the local stack runs the same
# script in a one-shot container). KAFKA_OPTS cleared: the broker's metrics agent option would make each
# tool's JVM bind the agent's port, which the broker holds.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS..." >&2
  exit 2
fi
container=$1
shift
exec docker exec --env KAFKA_OPTS= -i "${container}" bash -s -- "$@" <"$(dirname "$0")/kafka-topics.sh"
