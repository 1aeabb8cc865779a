#!/usr/bin/env bash
# pulumi up/destroy (or the plain outputs) for one stack. `local` gets the defaults a newcomer needs
# on a fresh machine: a file state backend (PULUMI_BACKEND_URL, set by the Makefile) and, when no
# secrets passphrase is configured, one generated once into the state folder (never committed).
# GCP stacks are shared by a team, so they need a gs:// backend and secrets that are not a file
# next to the state: a gcpkms:// secrets provider or an explicit passphrase. After `up` on GCP it
# waits until both Dataproc jobs run and the consumer has committed a batch (infra/tools/job_status.py),
# then records the release it verified as a stack tag in the shared state, which promotion reads
# (infra/release/promote.py). An update clears that record first: a failed wait leaves none.
set -euo pipefail

usage() {
  echo "usage: $0 up|destroy|outputs|wait <stack>" >&2
  echo "       $0 resubmit <stack> consumer|producer" >&2
  exit 2
}
[[ $# -ge 2 ]] || usage
action=$1
stack=$2
job=${3:-}
case $action in
  up | destroy | outputs | wait) [[ $# -eq 2 ]] || usage ;;
  resubmit) [[ $# -eq 3 && ($job == consumer || $job == producer) ]] || usage ;;
  *) usage ;;
esac

cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
generated_passphrase=.pulumi-state/passphrase
verified_tag=hydrostream:verified-release  # promote.VERIFIED_TAG
stack_file=stacks/Pulumi.$stack.yaml

# The secrets provider a stack was created with, as the CLI records it in the stack file.
stack_secrets_provider() {
  [[ -f $stack_file ]] || return 0
  sed -n -E "s/^secretsprovider:[[:space:]]*['\"]?([^'\"[:space:]]*)['\"]?[[:space:]]*$/\1/p" "$stack_file"
}

if [[ $stack == local ]]; then
  if [[ -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
    if [[ ! -s $generated_passphrase ]]; then
      mkdir -p .pulumi-state
      (umask 077 && head -c 32 /dev/urandom | base64 > "$generated_passphrase")
      echo "Generated a secrets passphrase in $generated_passphrase (keep it: it decrypts this state)." >&2
    fi
    export PULUMI_CONFIG_PASSPHRASE_FILE="$PWD/$generated_passphrase"
  fi
else
  problems=()
  if [[ ${PULUMI_BACKEND_URL:-} != gs://?* ]]; then
    problems+=("state: set PULUMI_BACKEND_URL=gs://<bucket> (a versioned bucket the team shares);"
      "  now: '${PULUMI_BACKEND_URL:-}' (a file backend is for the local stack only)")
  fi
  provider=$(stack_secrets_provider)
  requested=${SECRETS_PROVIDER:-}
  if [[ -n $requested && $requested != gcpkms://?* ]]; then
    problems+=("secrets: SECRETS_PROVIDER must be gcpkms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>;"
      "  now: '$requested'")
  fi
  passphrase_file=${PULUMI_CONFIG_PASSPHRASE_FILE:-}
  if [[ -n $passphrase_file && $passphrase_file -ef $generated_passphrase ]]; then
    problems+=("secrets: PULUMI_CONFIG_PASSPHRASE_FILE is $generated_passphrase, the local stack's generated"
      "  passphrase kept next to the state it decrypts; use a KMS key or a passphrase of the team's own")
  elif [[ $provider != gcpkms://?* && $requested != gcpkms://?* && -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z $passphrase_file ]]; then
    problems+=("secrets: $stack_file has secretsprovider '${provider:-(none: passphrase)}'; either create the"
      "  stack with a Cloud KMS key: make up STACK=$stack SECRETS_PROVIDER=gcpkms://projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k>"
      "  (recorded as secretsprovider in $stack_file), or set PULUMI_CONFIG_PASSPHRASE or"
      "  PULUMI_CONFIG_PASSPHRASE_FILE explicitly (no passphrase is generated for a GCP stack)")
  fi
  if [[ $action == up || $action == wait || $action == resubmit ]] && ! command -v gcloud >/dev/null 2>&1; then
    problems+=("gcloud: not installed; it checks the Dataproc jobs after \`pulumi up\`"
      "  (https://cloud.google.com/sdk/docs/install, then: gcloud auth login)")
  fi
  if ((${#problems[@]})); then
    echo "Refusing to $action GCP stack '$stack' (its state and secrets are shared by a team):" >&2
    printf '  %s\n' "${problems[@]}" >&2
    exit 1
  fi
fi

# Bounded wait for both Dataproc jobs (JOBS_TIMEOUT: 900, 90s, 15m, 1h); once it passes, the release of
# the outputs it checked is the stack's verified release.
wait_for_jobs() {
  local region outputs release
  region=$(pulumi config get gcp:region --stack "$stack")
  outputs=$(pulumi stack output --json --stack "$stack")
  python -m infra.tools.job_status wait --stack "$stack" --region "$region" --timeout "${JOBS_TIMEOUT:-15m}" \
    --interval "${JOBS_POLL_SECONDS:-15}" <<<"$outputs"
  release=$(python -c 'import json, sys; print(json.load(sys.stdin).get("release") or sys.exit(
    "the stack has no release output to record as verified"))' <<<"$outputs")
  pulumi stack tag set "$verified_tag" "$release" --stack "$stack"
  echo "Verified: $stack runs jobs release $release (stack tag $verified_tag)."
}

# Before an update of a GCP stack: until its wait passes, it has no verified release.
clear_verified() {
  if [[ $stack != local ]]; then
    pulumi stack tag set "$verified_tag" unverified --stack "$stack"
  fi
}

select_stack() {
  local create=(--create)
  if [[ $stack != local && -n ${SECRETS_PROVIDER:-} ]]; then
    create+=(--secrets-provider "$SECRETS_PROVIDER")
  fi
  pulumi stack select "${create[@]}" "$stack" --non-interactive
}

case $action in
  up)
    select_stack
    clear_verified
    pulumi up --stack "$stack"
    pulumi stack output --stack "$stack"
    if [[ $stack != local ]]; then
      wait_for_jobs
    fi
    ;;
  wait)
    [[ $stack != local ]] || { echo "wait: the local stack has no Dataproc jobs" >&2; exit 2; }
    wait_for_jobs
    ;;
  resubmit)
    # A job that died keeps its inputs, so a plain `up` leaves it dead: replace just that resource.
    [[ $stack != local ]] || { echo "resubmit: the local stack has no Dataproc jobs" >&2; exit 2; }
    urn=$(python -m infra.tools.job_status urn --stack "$stack" --job "$job")
    clear_verified
    pulumi up --stack "$stack" --replace "$urn"
    wait_for_jobs
    ;;
  destroy)
    # PURGE=1 also removes the volumes a local destroy keeps (data and generated secrets), with the
    # command the stack itself prints, read before the destroy clears the outputs.
    purge=""
    if [[ ${PURGE:-} == 1 ]]; then
      purge=$(pulumi stack output remove_data_volumes --stack "$stack")
    fi
    pulumi destroy --stack "$stack"
    if [[ -n $purge ]]; then
      bash -c "$purge"
    fi
    ;;
  outputs)
    # Plain outputs only: secrets stay encrypted (no --show-secrets).
    pulumi stack output --json --stack "$stack"
    ;;
esac
