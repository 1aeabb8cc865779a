#!/bin/bash
# open-host-ports.sh PORT/PROTOCOL...: accept these ports in the host firewall. COS drops every
# incoming connection but SSH; the VPC firewall rules stay the gate for who may connect.
set -euo pipefail

for spec in "$@"; do
  if [[ ! "${spec}" =~ ^[0-9]+/(tcp|udp)$ ]]; then
    echo "not PORT/PROTOCOL: ${spec}" >&2
    exit 2
  fi
  port=${spec%/*} protocol=${spec#*/}
  rule=(INPUT -p "${protocol}" --dport "${port}" -j ACCEPT)
  iptables -w -C "${rule[@]}" 2>/dev/null || iptables -w -A "${rule[@]}"
done
