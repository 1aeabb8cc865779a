#!/bin/bash
# kafka-metadata-quorum.sh: the tool class the Kafka 3.9 distribution's bin/kafka-metadata-quorum.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" org.apache.kafka.tools.MetadataQuorumCommand "$@"
