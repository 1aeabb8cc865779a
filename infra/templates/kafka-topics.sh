#!/bin/bash
# kafka-topics.sh BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS...: runs inside a container of the Kafka
# image (a one-shot container on the local stack; the broker's own container on a VM, through
# create-kafka-topics.sh). Waits for the broker, creates the topics idempotently (--if-not-exists)
# and converges their retention.ms. Partitions are only set at creation: Kafka can add partitions
# but never remove them. KAFKA_BIN: where the image keeps Kafka's tools.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS..." >&2
  exit 2
fi
bootstrap=$1
shift
bin=${KAFKA_BIN:-/opt/kafka/bin}

for attempt in $(seq 60); do
  if "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" --list >/dev/null; then
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
  "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" --create --if-not-exists \
    --topic "${topic}" --partitions "${partitions}" --replication-factor 1 \
    --config "retention.ms=${retention_ms}"
  "${bin}/kafka-configs.sh" --bootstrap-server "${bootstrap}" --alter --entity-type topics \
    --entity-name "${topic}" --add-config "retention.ms=${retention_ms}"
done
