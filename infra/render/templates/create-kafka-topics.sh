#!/bin/bash
# create-kafka-topics.sh CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS...: run kafka-topics.sh,
# shipped beside this script, inside the broker's running container (the local stack runs the same
# script in a one-shot container).
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS..." >&2
  exit 2
fi
container=$1
shift
exec docker exec -i "${container}" bash -s -- "$@" <"$(dirname "$0")/kafka-topics.sh"
