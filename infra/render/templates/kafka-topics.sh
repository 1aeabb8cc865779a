#!/bin/bash
# kafka-topics.sh BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS[:REPLICATION_FACTOR:MIN_ISR]...: runs inside a
# container of the Kafka image, run by kafka-setup.sh (a one-shot container on the local stack; the broker's
# own container on a VM), and on the test brokers. Waits for the broker, creates the topics idempotently
# (--if-not-exists) with their replication factor (default 1) and converges their retention.ms and
# min.insync.replicas (default 1). Partitions and replicas are only set at creation: Kafka can add partitions
# but never remove them, and more replicas take a partition reassignment, so a topic that exists with fewer
# replicas than asked fails this script instead of passing for replicated. A create that fails while fewer
# brokers than replicas are up fails the script; its unit retries. KAFKA_BIN: where the image keeps Kafka's
# tools. KAFKA_CLIENT_CONFIG: the admin's client config (kafka-sasl-files.sh's admin.properties) on a broker
# that authenticates its clients.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 BOOTSTRAP TOPIC:PARTITIONS:RETENTION_MS[:REPLICATION_FACTOR:MIN_ISR]..." >&2
  exit 2
fi
bootstrap=$1
shift
bin=${KAFKA_BIN:-/opt/kafka/bin}
login=()
if [[ -n ${KAFKA_CLIENT_CONFIG:-} ]]; then
  login=(--command-config "${KAFKA_CLIENT_CONFIG}")
fi

for attempt in $(seq 60); do
  if "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" "${login[@]}" --list >/dev/null; then
    break
  fi
  if [[ ${attempt} -eq 60 ]]; then
    echo "broker ${bootstrap} did not answer" >&2
    exit 1
  fi
  sleep 5
done

for spec in "$@"; do
  IFS=: read -r topic partitions retention_ms replicas min_isr <<<"${spec}"
  replicas=${replicas:-1}
  min_isr=${min_isr:-1}
  "${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" "${login[@]}" --create --if-not-exists \
    --topic "${topic}" --partitions "${partitions}" --replication-factor "${replicas}" \
    --config "retention.ms=${retention_ms}" --config "min.insync.replicas=${min_isr}"
  "${bin}/kafka-configs.sh" --bootstrap-server "${bootstrap}" "${login[@]}" --alter --entity-type topics \
    --entity-name "${topic}" --add-config "retention.ms=${retention_ms},min.insync.replicas=${min_isr}"
  # The summary line of --describe: "Topic: T  TopicId: ...  ReplicationFactor: N  Configs: ...".
  described=$("${bin}/kafka-topics.sh" --bootstrap-server "${bootstrap}" "${login[@]}" --describe --topic "${topic}")
  actual=$(sed -n 's/.*ReplicationFactor: *\([0-9][0-9]*\).*/\1/p' <<<"${described}" | head -n 1)
  if [[ -z ${actual} ]]; then
    echo "topic ${topic}: --describe shows no replication factor" >&2
    exit 1
  fi
  if ((actual < replicas)); then
    echo "topic ${topic} has replication factor ${actual}, wanted ${replicas}: reassign its partitions" \
      "(kafka-reassign-partitions.sh) before relying on it" >&2
    exit 1
  fi
done
