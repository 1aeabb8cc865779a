#!/bin/bash
# kafka-console-consumer.sh: the tool class the Kafka 3.9 distribution's bin/kafka-console-consumer.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.consumer.ConsoleConsumer "$@"
