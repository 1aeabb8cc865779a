#!/bin/bash
# kafka-get-offsets.sh: the tool class the Kafka 3.9 distribution's bin/kafka-get-offsets.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.GetOffsetShell "$@"
