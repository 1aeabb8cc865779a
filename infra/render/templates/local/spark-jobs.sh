#!/bin/bash
# spark-jobs.sh -- CONSUMER_SUBMIT_ARGS... -- PRODUCER_SUBMIT_ARGS...: the local stack's Spark
# container (catalog image, local-mode Spark). Started as root: hands the writable folders to the
# Spark user. Then, as the Spark user, runs spark-submit with the consumer's arguments and, once the consumer's
# metrics endpoint answers (Dataproc submits the producer once the consumer runs), with the
# producer's. The Kafka connector comes as uploaded jars (--jars), the Python packages the jobs import beyond
# pyspark as uploaded wheels (--py-files): nothing is resolved from Maven or PyPI. When either job
# ends the script stops the other and exits with its status; the restart policy starts both again.
#
# Environment: HYDRO_SPARK_USER, HYDRO_OWNED_DIRS (space-separated), HYDRO_CONSUMER_READY_URL.
set -euo pipefail
: "${HYDRO_SPARK_USER:?}" "${HYDRO_OWNED_DIRS:?}" "${HYDRO_CONSUMER_READY_URL:?}" "${SPARK_HOME:?}"

usage() {
  echo "usage: $0 -- CONSUMER_SUBMIT_ARGS... -- PRODUCER_SUBMIT_ARGS..." >&2
  exit 2
}
[[ ${1:-} == -- ]] || usage
shift
consumer=()
while [[ $# -gt 0 && $1 != -- ]]; do
  consumer+=("$1")
  shift
done
[[ ${#consumer[@]} -gt 0 && $# -gt 1 ]] || usage
shift
producer=("$@")

read -r -a owned <<<"${HYDRO_OWNED_DIRS}"
mkdir -p "${owned[@]}"
chown "${HYDRO_SPARK_USER}:" "${owned[@]}"

export PYSPARK_PYTHON=python3

pids=()
stop_jobs() {
  if [[ ${#pids[@]} -gt 0 ]]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
  fi
  wait || true
}
trap 'stop_jobs; exit 143' TERM INT

# gosu itself in the background (not a function: that would fork a subshell), so $! is the job.
gosu "${HYDRO_SPARK_USER}" "${SPARK_HOME}/bin/spark-submit" "${consumer[@]}" &
consumer_pid=$!
pids+=("${consumer_pid}")
until python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "${HYDRO_CONSUMER_READY_URL}" 2>/dev/null; do
  if ! kill -0 "${consumer_pid}" 2>/dev/null; then
    status=0
    wait "${consumer_pid}" || status=$?
    echo "the consumer ended (status ${status}) before its metrics endpoint answered" >&2
    exit "$((status == 0 ? 1 : status))"
  fi
  sleep 5
done

gosu "${HYDRO_SPARK_USER}" "${SPARK_HOME}/bin/spark-submit" "${producer[@]}" &
pids+=("$!")
status=0
wait -n || status=$?
echo "a job ended (status ${status}): stopping the other; the restart policy starts both again" >&2
stop_jobs
exit "$((status == 0 ? 1 : status))"
