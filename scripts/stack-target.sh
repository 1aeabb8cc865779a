# stack-target.sh: sourced by the operator scripts that reach a GCP stack's VMs (restore-influxdb.sh,
# kafka-broker-gcp.sh) from the repository root; needs their `fail MESSAGE`.
# load_target TOOL STACK KEY...: fill the array `target` with what `python -m infra.tools.TOOL STACK`
# prints (KEY=VALUE lines, from the stack's model); fails naming a KEY it did not print.
# shellcheck shell=bash disable=SC2034
declare -A target=()

load_target() {
  local tool=$1 stack=$2 key value python=${PYTHON:-.venv/bin/python}
  shift 2
  [[ -x $python ]] || fail "no $python: run 'make venv' first"
  command -v gcloud >/dev/null || fail "gcloud is not installed (https://cloud.google.com/sdk/docs/install)"
  while IFS='=' read -r key value; do
    target[$key]=$value
  done < <("$python" -m "infra.tools.$tool" "$stack")
  for key in "$@"; do
    [[ -n ${target[$key]:-} ]] || fail "infra.tools.$tool $stack printed no $key"
  done
}
