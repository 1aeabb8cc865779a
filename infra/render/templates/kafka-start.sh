#!/bin/bash
# kafka-start.sh INITIAL_CONTROLLERS: the command of a broker VM's Kafka container (apache/kafka 3.9.1) in a
# dynamic KRaft quorum; BIN_DIR is mounted read-only at the folder this script runs from. It does what the
# image's /etc/kafka/docker/run does, but formats with kafka-format.sh beside it: the image's own format
# (KafkaDockerWrapper setup) passes no --initial-controllers, --standalone or --no-initial-controllers,
# and Kafka 3.9's storage tool refuses that on a controller without controller.quorum.voters, formatted or
# not (fixed for --standalone only in 4.0: https://issues.apache.org/jira/browse/KAFKA-18737).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 INITIAL_CONTROLLERS" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
config=/opt/kafka/config/server.properties
refusal="Because controller.quorum.voters is not set on this controller"

# The image's environment checks and defaults, as its run script sources them.
# shellcheck source=/dev/null
. /etc/kafka/docker/configureDefaults
# shellcheck source=/dev/null
. /etc/kafka/docker/configure

# KAFKA_OPTS loads the metrics agent (infra/catalog.py) on the agent's port: the broker's JVM only, not
# the setup and format JVMs before it.
broker_opts=${KAFKA_OPTS-}
export KAFKA_OPTS=

# The wrapper writes server.properties from the KAFKA_* environment, then formats; only its format's
# refusal above is expected here.
if ! setup=$(/opt/kafka/bin/kafka-run-class.sh kafka.docker.KafkaDockerWrapper setup \
    --default-configs-dir /etc/kafka/docker --mounted-configs-dir /mnt/shared/config \
    --final-configs-dir /opt/kafka/config 2>&1); then
  if ! grep -q "${refusal}" <<<"${setup}"; then
    echo "${setup}" >&2
    exit 1
  fi
fi
bash "${here}/kafka-format.sh" "${config}" "${CLUSTER_ID}" "$1"
export KAFKA_OPTS=${broker_opts}
exec /opt/kafka/bin/kafka-server-start.sh "${config}"
