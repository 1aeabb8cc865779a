#!/bin/bash
# volume-dirs.sh OWNER DIR...: create a container's data folders on the data disk, owned by the
# container's user (uid:gid) so a non-root image can write to them.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 OWNER DIR..." >&2
  exit 2
fi
owner=$1
shift
for dir in "$@"; do
  mkdir -p "${dir}"
  chown "${owner}" "${dir}"
  chmod 0750 "${dir}"
done
