#!/bin/bash
# kafka-acls.sh: the tool class the Kafka 3.9 distribution's bin/kafka-acls.sh runs.
exec "$(dirname "$0")/kafka-run-class.sh" kafka.admin.AclCommand "$@"
