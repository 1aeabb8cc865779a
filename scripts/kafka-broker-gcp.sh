#!/usr/bin/env bash
# kafka-broker-gcp.sh VERB N [ARGS...]: scripts/replace-broker.sh's DRIVER for a GCP stack's brokers
# (STACK=staging|prod in the environment), over IAP SSH to broker N's VM; tests/kafka/broker-driver.sh is the
# test cluster's. The verbs are replace-broker.sh's. Tools run inside the broker's running container with a
# small heap (the container's KAFKA_HEAP_OPTS is the broker's) and without KAFKA_OPTS (the broker's metrics
# agent, whose port the broker holds), logged in as the Kafka admin with the login files kafka-start.sh wrote
# in the container's tmpfs (the controller's on --bootstrap-controller, where @config is the broker's own
# properties with that login appended, else the client listener's). `format` leaves a join-quorum marker in
# the empty log directory, and the container's start formats it (kafka-start.sh runs kafka-format.sh, which
# sees the marker: --no-initial-controllers, a new directory id), so `start` formats. Needs gcloud signed in
# as someone who may SSH to the VMs through IAP, and the project's virtualenv.
set -euo pipefail

fail() {
  echo "kafka-broker-gcp: $*" >&2
  exit 1
}
[[ $# -ge 2 ]] || fail "usage: STACK=<stack> $0 tool|controllers|bootstrap|stop|start|wipe|format N [ARGS...]"
: "${STACK:?STACK must name the GCP stack}"
verb=$1 node=$2
shift 2

cd "$(dirname "$0")/.."
# shellcheck source=scripts/stack-target.sh
source scripts/stack-target.sh
load_target replace_target "$STACK" project container unit sasl
[[ -n ${target[broker_$node]:-} ]] || fail "stack $STACK has no broker $node"
read -r instance zone <<<"${target[broker_$node]}"
container=${target[container]} unit=${target[unit]}

# Run a shell command line (already quoted) on broker N's VM.
on_vm() {
  gcloud compute ssh "$instance" --project "${target[project]}" --zone "$zone" --tunnel-through-iap \
    --command "$1"
}

case $verb in
  tool)
    tool=$1
    shift
    sasl=${target[sasl]}
    config=/opt/kafka/config/server.properties
    if [[ " $* " == *" --bootstrap-controller "* ]]; then
      login=$sasl/controller.properties
      # add-controller reads the node's id and listeners from its own config: that config with the login.
      prepare="cat $config $login >$sasl/server-login.properties && "
      config=$sasl/server-login.properties
    else
      login=$sasl/admin.properties
      prepare=""
    fi
    words=()
    [[ " $* " == *" @config "* ]] || words=(--command-config "$login")
    for arg in "$@"; do
      words+=("$(printf %q "${arg/#@config/$config}")")
    done
    on_vm "sudo docker exec --env KAFKA_HEAP_OPTS=-Xmx256m --env KAFKA_OPTS= $container bash -c $(printf %q \
      "umask 077 && ${prepare}exec /opt/kafka/bin/$tool ${words[*]}")"
    ;;
  controllers) on_vm "sudo docker exec $container printenv KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS" ;;
  bootstrap) echo "localhost:9092" ;;
  stop) on_vm "sudo systemctl stop $unit" ;;
  start)
    on_vm "sudo systemctl start $unit && for i in \$(seq 120); do
      [ \"\$(sudo docker inspect --format '{{.State.Health.Status}}' $container 2>/dev/null)\" = healthy ] && exit 0
      sleep 5; done; sudo journalctl -u $unit -n 40 --no-pager; exit 1"
    ;;
  wipe)
    on_vm "mountpoint -q ${target[data]%/*} && ! sudo docker inspect $container >/dev/null 2>&1 &&
      sudo find ${target[data]} -mindepth 1 -delete"
    ;;
  format)
    # Owned by the container's user, as volume-dirs.sh makes the folder; formatted as the broker starts.
    on_vm "sudo touch ${target[data]}/join-quorum && sudo chown ${target[user]} ${target[data]}/join-quorum"
    ;;
  *) fail "unknown verb $verb" ;;
esac
