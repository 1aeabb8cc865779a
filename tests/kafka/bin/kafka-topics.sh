#!/bin/bash
# kafka-topics.sh: the tool class the Kafka 3.9 distribution's bin/kafka-topics.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.TopicCommand "$@"
