#!/bin/bash
# replace-broker.sh DRIVER BROKER [STEP...]: bring broker BROKER of a three-node KRaft cluster (dynamic quorum,
# KIP-853) back as a voter after its VM, its disk or its zone was lost, or its disk was restored from a
# snapshot. docs/operations.md ("Replace a broker") says when to run it; `make replace-broker` runs it on GCP.
#
# Steps, in order (all of them by default; naming some runs only those):
#   check   a quorum with a leader other than BROKER answers; prints the cluster id and BROKER's voter entry
#   remove  kafka-metadata-quorum remove-controller of BROKER's old directory id (none: already removed)
#   format  stop BROKER, empty its log directory, format it to join with a new directory id
#   start   start BROKER: it fetches the metadata log as an observer
#   add     once it has caught up, kafka-metadata-quorum add-controller from BROKER itself
#   wait    BROKER is a voter under its new directory id and no partition is under-replicated
#
# DRIVER is an executable that knows how to reach the brokers (scripts/kafka-broker-gcp.sh on GCP,
# tests/kafka/broker-driver.sh in the tests), called as `DRIVER VERB N [ARGS...]`:
#   tool N TOOL ARGS...  run the Kafka tool TOOL on broker N's host, logged in as the admin where the
#                        brokers authenticate; an argument @config is N's config file (with that login)
#   controllers N        print the controllers' host:port list as broker N reaches them
#   bootstrap N          print the brokers' client host:port list as broker N reaches them
#   stop N | start N     stop or start broker N's Kafka; start returns once it runs
#   wipe N               empty broker N's log directory (it is stopped)
#   format N CLUSTER_ID  have broker N's empty log directory formatted by the brokers' format script
#                        (kafka-format.sh ... join: --no-initial-controllers, a new directory id)
# REPLICATION_TIMEOUT_S (default 900): how long `add` and `wait` wait.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 DRIVER BROKER [check|remove|format|start|add|wait]..." >&2
  exit 2
fi
driver=$1
broker=$2
shift 2
steps=("$@")
if [[ ${#steps[@]} -eq 0 ]]; then
  steps=(check remove format start add wait)
fi
timeout_s=${REPLICATION_TIMEOUT_S:-900}
state=${REPLACE_BROKER_STATE:-$(mktemp -d)}

# A surviving broker to run the quorum tools from: the first node id that is not BROKER.
survivor=1
if [[ ${broker} == 1 ]]; then
  survivor=2
fi

say() {
  echo "replace-broker ${broker}: $*" >&2
}

quorum() {
  "${driver}" tool "${survivor}" kafka-metadata-quorum.sh --bootstrap-controller "$(controllers)" "$@"
}

controllers() {
  "${driver}" controllers "${survivor}"
}

# The directory id of node $2 in the CurrentVoters or CurrentObservers list ($1) of `describe --status`.
directory_of() {
  sed -n "s/^$1: *//p" | grep -o "{\"id\": *$2, *\"directoryId\": *\"[^\"]*\"" | sed 's/.*"directoryId": *"//; s/"$//'
}

step_check() {
  local status leader
  status=$(quorum describe --status)
  leader=$(sed -n 's/^LeaderId: *//p' <<<"${status}")
  if [[ -z ${leader} || ${leader} -lt 0 || ${leader} == "${broker}" ]]; then
    say "no quorum leader other than broker ${broker} (LeaderId: ${leader:-none}): the surviving controllers" \
      "must form a majority first; nothing was changed" && return 1
  fi
  sed -n 's/^ClusterId: *//p' <<<"${status}" >"${state}/cluster-id"
  directory_of CurrentVoters "${broker}" <<<"${status}" >"${state}/old-directory-id" || true
  say "leader ${leader}; cluster $(cat "${state}/cluster-id");" \
    "voter directory id: $(cat "${state}/old-directory-id" || true)"
}

step_remove() {
  local old
  old=$(cat "${state}/old-directory-id")
  if [[ -z ${old} ]]; then
    say "not a voter: nothing to remove"
    return 0
  fi
  # Attached to its option: a directory id may start with "-" (one drawn before Kafka avoided that).
  quorum remove-controller --controller-id "${broker}" "--controller-directory-id=${old}"
  say "removed voter ${broker} (directory id ${old})"
}

step_format() {
  "${driver}" stop "${broker}"
  "${driver}" wipe "${broker}"
  "${driver}" format "${broker}" "$(cat "${state}/cluster-id")"
}

step_start() {
  "${driver}" start "${broker}"
}

# Wait until $1 (a function) succeeds, at most REPLICATION_TIMEOUT_S; $2 says what for.
await() {
  local deadline=$((SECONDS + timeout_s))
  until "$1"; do
    if [[ ${SECONDS} -ge ${deadline} ]]; then
      say "$2 did not happen within ${timeout_s} s" && return 1
    fi
    sleep 2
  done
}

observer_caught_up() {
  local replication lag
  replication=$(quorum describe --replication)
  # NodeId DirectoryId LogEndOffset Lag LastFetchTimestamp LastCaughtUpTimestamp Status; the removed
  # voter's directory id may still be listed as an observer that stopped fetching.
  lag=$(awk -v id="${broker}" -v old="$(cat "${state}/old-directory-id")" \
    '$1 == id && $2 != old && $NF == "Observer" {print $4}' <<<"${replication}")
  [[ -n ${lag} && ${lag} -eq 0 ]]
}

step_add() {
  await observer_caught_up "broker ${broker} catching up with the metadata log as an observer"
  "${driver}" tool "${broker}" kafka-metadata-quorum.sh --command-config @config \
    --bootstrap-controller "$(controllers)" add-controller
  say "added voter ${broker}"
}

fully_replicated() {
  local status new old under
  status=$(quorum describe --status)
  new=$(directory_of CurrentVoters "${broker}" <<<"${status}")
  old=$(cat "${state}/old-directory-id" 2>/dev/null || true)
  [[ -n ${new} && ${new} != "${old}" ]] || return 1
  under=$("${driver}" tool "${survivor}" kafka-topics.sh --bootstrap-server "$("${driver}" bootstrap "${survivor}")" \
    --describe --under-replicated-partitions)
  [[ -z ${under} ]] || return 1
  echo "${new}" >"${state}/new-directory-id"
}

step_wait() {
  await fully_replicated "broker ${broker} a voter with a new directory id and every partition fully replicated"
  say "voter under directory id $(cat "${state}/new-directory-id"); no under-replicated partition"
}

for step in "${steps[@]}"; do
  case ${step} in
    check | remove | format | start | add | wait) "step_${step}" ;;
    *)
      echo "unknown step ${step}: check, remove, format, start, add or wait" >&2
      exit 2
      ;;
  esac
done
