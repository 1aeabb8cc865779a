#!/bin/bash
# kafka-console-producer.sh: the tool class the Kafka 3.9 distribution's bin/kafka-console-producer.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.ConsoleProducer "$@"
