#!/usr/bin/env bash
# pulumi up/destroy (or the plain outputs) for one stack, with the defaults a newcomer needs on a fresh machine:
# a local file state backend (PULUMI_BACKEND_URL, set by the Makefile) and, when no secrets
# passphrase is configured, one generated once into the state folder (never committed).
set -euo pipefail

usage() { echo "usage: $0 up|destroy|outputs <stack>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
stack=$2
[[ $action == up || $action == destroy || $action == outputs ]] || usage

cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

if [[ -z ${PULUMI_CONFIG_PASSPHRASE:-} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
  passphrase_file=.pulumi-state/passphrase
  if [[ ! -s $passphrase_file ]]; then
    mkdir -p .pulumi-state
    (umask 077 && head -c 32 /dev/urandom | base64 > "$passphrase_file")
    echo "Generated a secrets passphrase in $passphrase_file (keep it: it decrypts this state)." >&2
  fi
  export PULUMI_CONFIG_PASSPHRASE_FILE="$PWD/$passphrase_file"
fi

case $action in
  up)
    pulumi stack select --create "$stack" --non-interactive
    pulumi up --stack "$stack"
    pulumi stack output --stack "$stack"
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
