#!/bin/bash
# kafka-configs.sh: the tool class the Kafka 3.9 distribution's bin/kafka-configs.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.ConfigCommand "$@"
