#!/bin/bash
# broker-driver.sh VERB N [ARGS...]: scripts/replace-broker.sh's DRIVER for the test cluster on this machine
# (tests/kafka/cluster.py), the counterpart of scripts/kafka-broker-gcp.sh. HYDRO_CLUSTER_DIR: the cluster's
# folder, node N's in node-N/ (server.properties, start.sh, data/, broker.log, pid), and sasl/ when the
# brokers authenticate (kafka-sasl-files.sh's files: every tool then logs in as the admin, on the controller
# listener with --bootstrap-controller, else on the client listener); KAFKA_BIN: the tools.
set -euo pipefail

: "${HYDRO_CLUSTER_DIR:?HYDRO_CLUSTER_DIR must name the test cluster folder}"
here=$(cd "$(dirname "$0")" && pwd)
verb=$1
node=${HYDRO_CLUSTER_DIR}/node-$2
shift 2

case ${verb} in
  tool)
    tool=$1
    shift
    sasl=${HYDRO_CLUSTER_DIR}/sasl
    config=${node}/server.properties
    login=()
    if [[ -d ${sasl} ]]; then
      if [[ " $* " == *" --bootstrap-controller "* ]]; then
        # The node's own config (add-controller reads its id and listeners there) with the admin's login.
        config=${node}/server-login.properties
        cat "${node}/server.properties" "${sasl}/controller.properties" >"${config}"
        [[ " $* " == *" @config "* ]] || login=(--command-config "${sasl}/controller.properties")
      else
        login=(--command-config "${sasl}/admin.properties")
      fi
    fi
    args=()
    for arg in "$@"; do
      args+=("${arg/#@config/${config}}")
    done
    exec "${KAFKA_BIN}/${tool}" "${login[@]}" "${args[@]}"
    ;;
  controllers) cat "${HYDRO_CLUSTER_DIR}/controllers" ;;
  bootstrap) cat "${HYDRO_CLUSTER_DIR}/bootstrap" ;;
  stop)
    if [[ -f ${node}/pid ]] && kill -TERM "$(cat "${node}/pid")" 2>/dev/null; then
      for _ in $(seq 60); do
        kill -0 "$(cat "${node}/pid")" 2>/dev/null || break
        sleep 0.5
      done
      kill -KILL "$(cat "${node}/pid")" 2>/dev/null || true
    fi
    rm -f "${node}/pid"
    ;;
  wipe) find "${node}/data" -mindepth 1 -delete ;;
  format)
    if [[ -d ${HYDRO_CLUSTER_DIR}/sasl ]]; then
      export KAFKA_SASL_DIR=${HYDRO_CLUSTER_DIR}/sasl
    fi
    exec bash "${here}/../../infra/render/templates/kafka-format.sh" "${node}/server.properties" "$1" \
      "$(cat "${HYDRO_CLUSTER_DIR}/initial-controllers")" join
    ;;
  start)
    offset=$(stat -c %s "${node}/broker.log" 2>/dev/null || echo 0)
    setsid bash "${node}/start.sh" >>"${node}/broker.log" 2>&1 </dev/null &
    echo $! >"${node}/pid"
    for _ in $(seq 240); do
      # Not grep -q: it would stop reading at the match, and tail, killed writing the rest of a long log
      # (SIGPIPE), would fail the pipeline under pipefail: a started broker taken for one still starting.
      if tail -c "+$((offset + 1))" "${node}/broker.log" | grep "Kafka Server started" >/dev/null; then
        exit 0
      fi
      kill -0 "$(cat "${node}/pid")" 2>/dev/null || { tail -n 40 "${node}/broker.log" >&2; exit 1; }
      sleep 0.5
    done
    echo "broker ${node} did not start within 120 s" >&2
    exit 1
    ;;
  *)
    echo "unknown verb ${verb}" >&2
    exit 2
    ;;
esac
