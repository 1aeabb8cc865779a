#!/bin/bash
# mount-data-disk.sh DEVICE MOUNT_PATH: mount the persistent data disk, formatting it only when blank.
# Runs on every boot (COS keeps no fstab). A disk that holds anything blkid recognises other than
# ext4 (another filesystem, a partition table) is never formatted: the script fails instead.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DEVICE MOUNT_PATH" >&2
  exit 2
fi
device=$1 mount_path=$2

for _ in $(seq 60); do
  [[ -e "${device}" ]] && break
  sleep 2
done
if [[ ! -e "${device}" ]]; then
  echo "data disk ${device} did not appear" >&2
  exit 1
fi

mkdir -p "${mount_path}"
if mountpoint -q "${mount_path}"; then
  echo "${mount_path} is already mounted"
  exit 0
fi

# blkid -p exits 0 with what it found, 2 when it found nothing, anything else on errors.
status=0
probe=$(blkid -p -o export -- "${device}") || status=$?
if [[ ${status} -eq 2 ]]; then
  # Nothing found could also mean nothing readable: prove the device reads before formatting it.
  dd if="${device}" of=/dev/null bs=4096 count=1 status=none
  echo "${device} holds no filesystem: formatting it ext4"
  mkfs.ext4 -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard "${device}"
elif [[ ${status} -ne 0 ]]; then
  echo "blkid could not probe ${device} (exit ${status}): not formatting it" >&2
  exit 1
elif ! grep -qx 'TYPE=ext4' <<<"${probe}"; then
  echo "${device} holds something other than an ext4 filesystem: not formatting it" >&2
  echo "${probe}" >&2
  exit 1
fi

mount -t ext4 -o discard,defaults "${device}" "${mount_path}"
# Grows the filesystem when the disk was resized; a no-op otherwise.
resize2fs "${device}"
chmod 0755 "${mount_path}"
echo "${device} mounted at ${mount_path}"
