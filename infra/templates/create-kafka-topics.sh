#!/bin/bash
# create-kafka-topics.sh CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS...: create the topics
# once the broker answers, idempotently (--if-not-exists), and converge their retention.ms.
# Partitions are only set at creation: Kafka can add partitions but never remove them.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 CONTAINER BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS..." >&2
  exit 2
fi
container=$1 bootstrap=$2
shift 2
bin=/opt/kafka/bin

for attempt in $(seq 60); do
  if docker exec "${container}" "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" --list >/dev/null; then
    break
  fi
  if [[ ${attempt} -eq 60 ]]; then
    echo "broker ${bootstrap} did not answer" >&2
    exit 1
  fi
  sleep 5
done

for spec in "$@"; do
  IFS=: read -r topic partitions retention_ms <<<"${spec}"
  docker exec "${container}" "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" \
    --create --if-not-exists --topic "${topic}" --partitions "${partitions}" \
    --replication-factor 1 --config "retention.ms=${retention_ms}"
  docker exec "${container}" "${bin}/kafka-configs.sh" --bootstrap-server "${bootstrap}" \
    --alter --entity-type topics --entity-name "${topic}" --add-config "retention.ms=${retention_ms}"
done
