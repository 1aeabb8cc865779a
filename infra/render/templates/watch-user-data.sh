#!/bin/bash
# watch-user-data.sh CLOUD_INIT_COPY STATE_FILE: reboot when the VM's user-data metadata is no longer
# the document this boot applied.
#   CLOUD_INIT_COPY  cloud-init's raw copy of the user-data it applied at boot
#                    (/var/lib/cloud/instance/user-data.txt)
#   STATE_FILE       on a persistent disk: the digest this script last rebooted for
# Pulumi updates `metadata` in place (only a replacement would re-run cloud-init, and prod's deletion
# protection refuses that): COS applies cloud-init on every boot, so a reboot applies the new
# document and the data disk stays. In doubt (no copy, no metadata) it never reboots, and it reboots
# at most once for one document, so a document that fails to apply cannot loop.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/gce-metadata.sh"

if [[ $# -ne 2 ]]; then
  echo "usage: $0 CLOUD_INIT_COPY STATE_FILE" >&2
  exit 2
fi
copy=$1 state=$2
if [[ ! -f "${copy}" ]]; then
  echo "warning: no ${copy}: cannot tell which user-data this boot applied" >&2
  exit 0
fi
if ! current=$(metadata_get "instance/attributes/user-data" | sha256sum); then
  echo "warning: cannot read the user-data metadata; trying again later" >&2
  exit 0
fi
current=${current%% *}
booted=$(sha256sum <"${copy}")
booted=${booted%% *}
if [[ "${current}" == "${booted}" ]]; then
  exit 0
fi
if [[ -f "${state}" && "$(cat "${state}")" == "${current}" ]]; then
  echo "user-data ${current} still differs from the applied ${booted} after a reboot for it: not rebooting again" >&2
  exit 1
fi
mkdir -p "$(dirname "${state}")"
printf '%s' "${current}" >"${state}"
echo "user-data changed (${booted} -> ${current}): rebooting to apply it"
systemctl reboot
