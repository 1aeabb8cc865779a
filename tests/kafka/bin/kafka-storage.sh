#!/bin/bash
# kafka-storage.sh: the tool class the Kafka 3.9 distribution's bin/kafka-storage.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.tools.StorageTool "$@"
