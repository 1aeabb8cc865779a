#!/bin/bash
# kafka-format.sh CONFIG CLUSTER_ID INITIAL_CONTROLLERS: format this node's empty KRaft log directory for a
# dynamic quorum (KIP-853, kraft.version 1), or leave a formatted one alone. Runs in the broker's container
# before Kafka starts (kafka-start.sh) and formats the test cluster's nodes (tests/kafka/cluster.py).
# INITIAL_CONTROLLERS is the quorum every node is first formatted with (id@host:port:directory-id,...).
#
# An empty directory is formatted with --initial-controllers only while no other controller of the quorum
# answers (the cluster's first formation): once a quorum with a leader exists, the node joins it with
# --no-initial-controllers and a new random directory id, as an observer, until `add-controller` makes it
# a voter again (scripts/replace-broker.sh). Formatting a returning node with --initial-controllers would
# give an empty log the directory id the voters still count on.
# KAFKA_BIN: where Kafka's tools are (the image's by default).
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 CONFIG CLUSTER_ID INITIAL_CONTROLLERS" >&2
  exit 2
fi
config=$1
cluster_id=$2
initial=$3
bin=${KAFKA_BIN:-/opt/kafka/bin}
# The tools run beside the broker's heap, not with it (the container's KAFKA_HEAP_OPTS is the broker's).
export KAFKA_HEAP_OPTS=-Xmx256m

property() {
  sed -n "s/^$1=//p" "${config}" | tail -n 1
}

node_id=$(property node.id)
log_dir=$(property metadata.log.dir)
log_dir=${log_dir:-$(property log.dirs | cut -d, -f1)}
if [[ -z ${node_id} || -z ${log_dir} ]]; then
  echo "${config} names no node.id or log.dirs" >&2
  exit 1
fi
if [[ -f ${log_dir}/meta.properties ]]; then
  echo "${log_dir} is formatted: $(grep '^directory.id=' "${log_dir}/meta.properties")"
  exit 0
fi

others=()
IFS=, read -ra voters <<<"${initial}"
for voter in "${voters[@]}"; do
  id=${voter%%@*}
  endpoint=${voter#*@}
  if [[ ${id} != "${node_id}" ]]; then
    others+=("${endpoint%:*}")
  fi
done

flags=(--initial-controllers "${initial}")
if [[ ${#others[@]} -gt 0 ]]; then
  probe=$(mktemp)
  trap 'rm -f "${probe}"' EXIT
  printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=5000\n' >"${probe}"
  controllers=$(IFS=,; echo "${others[*]}")
  if status=$("${bin}/kafka-metadata-quorum.sh" --bootstrap-controller "${controllers}" \
      --command-config "${probe}" describe --status 2>/dev/null) && grep -q '^LeaderId:[[:space:]]*[0-9]' <<<"${status}"; then
    echo "a quorum answers at ${controllers}: joining it as an observer with a new directory id"
    flags=(--no-initial-controllers)
  fi
fi
exec "${bin}/kafka-storage.sh" format --cluster-id "${cluster_id}" --config "${config}" "${flags[@]}"
