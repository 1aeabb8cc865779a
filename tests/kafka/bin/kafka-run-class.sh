#!/bin/bash
# kafka-run-class.sh CLASS ARGS...: run one of Kafka's tool classes from the jars the test fixture
# resolved from Maven Central (KAFKA_LIBS), as the distribution's script of the same name does.
set -euo pipefail
: "${KAFKA_LIBS:?KAFKA_LIBS must name the folder of the Kafka jars}"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2086  # KAFKA_TOOL_OPTS is a list of JVM flags
exec java ${KAFKA_TOOL_OPTS:--Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC} \
  "-Dlog4j.configuration=file:${here}/../tools-log4j.properties" -cp "${KAFKA_LIBS}/*" "$@"
