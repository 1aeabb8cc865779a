#!/bin/bash
# volume-dirs.sh MOUNT_PATH OWNER DIR...: create a container's data folders on the data disk mounted
# at MOUNT_PATH, owned by the container's user (uid:gid) so a non-root image can write to them.
# Refuses when the disk is not mounted: the folder below the mount point is a tmpfs on COS.
set -euo pipefail

if [[ $# -lt 3 ]]; then
  echo "usage: $0 MOUNT_PATH OWNER DIR..." >&2
  exit 2
fi
mount_path=$1 owner=$2
shift 2
if ! mountpoint -q "${mount_path}"; then
  echo "the data disk is not mounted at ${mount_path}" >&2
  exit 1
fi
for dir in "$@"; do
  mkdir -p "${dir}"
  chown "${owner}" "${dir}"
  chmod 0750 "${dir}"
done
