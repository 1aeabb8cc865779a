#!/bin/bash
# kafka-format.sh CONFIG CLUSTER_ID INITIAL_CONTROLLERS [join]: format this node's empty KRaft log directory
# for a dynamic quorum (KIP-853, kraft.version 1), or leave a formatted one alone. Runs in the broker's
# container before Kafka starts (kafka-start.sh) and formats the test cluster's nodes (tests/kafka/cluster.py).
# INITIAL_CONTROLLERS is the quorum every node is first formatted with (id@host:port:directory-id,...).
#
# `join` (or a file join-quorum in the empty log directory, which scripts/replace-broker.sh's GCP driver
# leaves there): --no-initial-controllers, a new random directory id; the node is an observer until
# `add-controller` makes it a voter again. The procedure always formats this way.
# Otherwise (a VM's boot on an empty disk) the node guesses: --initial-controllers while no other
# controller of the quorum answers (the cluster's first formation), joining once a quorum with a leader
# answers. A quorum that exists but does not answer in time is taken for none (docs/operations.md: never
# boot an empty broker while the others are down, and run the procedure after any empty-disk boot).
# Formatting a returning node with --initial-controllers gives an empty log the directory id the voters
# still count on.
# KAFKA_BIN: where Kafka's tools are (the image's by default). KAFKA_SASL_DIR: the folder kafka-sasl-files.sh
# wrote, on a broker that authenticates its clients: the probe logs in on the controller listener, and the
# format adds the admin's SCRAM credential to the metadata (the brokers log in to each other with it). The
# storage tool takes it only on its command line, so its arguments go through a Java argument file on
# tmpfs (`java @file`): the password never shows in a process list.
set -euo pipefail

if [[ $# -lt 3 || $# -gt 4 || ${4:-join} != join ]]; then
  echo "usage: $0 CONFIG CLUSTER_ID INITIAL_CONTROLLERS [join]" >&2
  exit 2
fi
config=$1
cluster_id=$2
initial=$3
join=${4:-}
marker="join-quorum"
bin=${KAFKA_BIN:-/opt/kafka/bin}
# Where a file holding a password goes: a tmpfs (the container's /dev/shm), never a disk.
private=/dev/shm
[[ -d ${private} ]] || private=${TMPDIR:-/tmp}
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
if [[ -n ${join} || -f ${log_dir}/${marker} ]]; then
  flags=(--no-initial-controllers)
elif [[ ${#others[@]} -gt 0 ]]; then
  probe=$(umask 077 && mktemp -p "${private}")
  trap 'rm -f "${probe}"' EXIT
  printf 'request.timeout.ms=15000\ndefault.api.timeout.ms=30000\n' >"${probe}"
  if [[ -n ${KAFKA_SASL_DIR:-} ]]; then
    cat "${KAFKA_SASL_DIR}/controller.properties" >>"${probe}"
  fi
  controllers=$(IFS=,; echo "${others[*]}")
  if status=$("${bin}/kafka-metadata-quorum.sh" --bootstrap-controller "${controllers}" \
      --command-config "${probe}" describe --status 2>/dev/null) && grep -q '^LeaderId:[[:space:]]*[0-9]' <<<"${status}"; then
    echo "a quorum answers at ${controllers}: joining it as an observer with a new directory id"
    flags=(--no-initial-controllers)
  fi
fi
if [[ -z ${KAFKA_SASL_DIR:-} ]]; then
  "${bin}/kafka-storage.sh" format --cluster-id "${cluster_id}" --config "${config}" "${flags[@]}"
else
  args=$(umask 077 && mktemp -p "${private}")
  trap 'rm -f "${probe:-}" "${args}"' EXIT
  # One quoted argument a line (a Java argument file splits on blanks outside quotes).
  printf '"%s"\n' kafka.tools.StorageTool format --cluster-id "${cluster_id}" --config "${config}" "${flags[@]}" \
    >"${args}"
  cat "${KAFKA_SASL_DIR}/format.args" >>"${args}"
  "${bin}/kafka-run-class.sh" "@${args}"
fi
rm -f "${log_dir:?}/${marker}"
