#!/bin/bash
# kafka-start.sh INITIAL_CONTROLLERS ADMIN_USER SECRETS_DIR SASL_DIR: the command of a Kafka container
# (apache/kafka 3.9.1: a broker VM's, the local stack's) in a dynamic KRaft quorum whose listeners
# authenticate with SASL; the scripts beside it are mounted or uploaded with it. It does what the image's
# /etc/kafka/docker/run does, but formats with kafka-format.sh beside it: the image's own format
# (KafkaDockerWrapper setup) passes no --initial-controllers, --standalone or --no-initial-controllers, and
# Kafka 3.9's storage tool refuses that on a controller without controller.quorum.voters, formatted or not
# (fixed for --standalone only in 4.0: https://issues.apache.org/jira/browse/KAFKA-18737); nor does it add the
# admin's SCRAM credential, which the brokers log in to each other with. The admin's login files
# (kafka-sasl-files.sh, from SECRETS_DIR/kafka-password-ADMIN_USER) go to SASL_DIR, a tmpfs of the container's
# own: the broker's JAAS file, and the tools' client configs for whoever runs a tool in this container.
set -euo pipefail

if [[ $# -ne 4 ]]; then
  echo "usage: $0 INITIAL_CONTROLLERS ADMIN_USER SECRETS_DIR SASL_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
# The image's paths, below HYDRO_IMAGE_ROOT (empty in the image: tests/kafka/test_kafka_start.py lays the
# image's layout out in a folder of its own).
root=${HYDRO_IMAGE_ROOT:-}
kafka=${root}/opt/kafka
config=${kafka}/config/server.properties
refusal="Because controller.quorum.voters is not set on this controller"
bash "${here}/kafka-sasl-files.sh" "$2" "$3/kafka-password-$2" "$4"

# The image's environment checks and defaults, as its run script sources them. In 3.9 the defaults are
# CLUSTER_ID's alone; later images default KAFKA_CONTROLLER_QUORUM_VOTERS too, which would turn this
# dynamic quorum into a static one of a wrong port: check on any image upgrade.
# shellcheck source=/dev/null
. "${root}/etc/kafka/docker/configureDefaults"
# shellcheck source=/dev/null
. "${root}/etc/kafka/docker/configure"

# KAFKA_OPTS loads the metrics agent (infra/catalog.py) on the agent's port: the broker's JVM only, not
# the setup and format JVMs before it.
broker_opts=${KAFKA_OPTS-}
export KAFKA_OPTS=

# The wrapper writes server.properties from the KAFKA_* environment, then formats; only its format's
# refusal above is expected here (at every start: the storage tool refuses before it looks at the disk).
if ! setup=$("${kafka}/bin/kafka-run-class.sh" kafka.docker.KafkaDockerWrapper setup \
    --default-configs-dir "${root}/etc/kafka/docker" --mounted-configs-dir "${root}/mnt/shared/config" \
    --final-configs-dir "${kafka}/config" 2>&1); then
  if ! grep -q "${refusal}" <<<"${setup}"; then
    echo "${setup}" >&2
    exit 1
  fi
fi
KAFKA_BIN=${kafka}/bin KAFKA_SASL_DIR=$4 bash "${here}/kafka-format.sh" "${config}" "${CLUSTER_ID}" "$1"
export KAFKA_OPTS="${broker_opts} -Djava.security.auth.login.config=$4/jaas.conf"
exec "${kafka}/bin/kafka-server-start.sh" "${config}"
