"""Where a GCP stack's InfluxDB VM and backups are, for scripts/restore-influxdb.sh.

    python -m infra.tools.restore_target STACK

prints KEY=VALUE lines (project, zone, instance, backup_bucket, influxdb_bucket, restore_command,
monitoring_instance, grafana_unit), all from the stack's model: the names the program deploys.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from infra import catalog
from infra.model import StackModel
from infra.render import cloud_init
from infra.roles import Bucket
from infra.tools import stack_target


def restore_target(model: StackModel) -> dict[str, str]:
    """Where a GCP stack's InfluxDB VM and backups are, and the VM's restore command (shell words)."""
    if model.gcp is None:
        raise ValueError(f"stack {model.stack!r} is not on GCP: its InfluxDB has no backups to restore")
    gcp = model.gcp
    return {
        "project": gcp.project,
        "zone": gcp.influxdb.zone,
        "instance": gcp.influxdb.name,
        "backup_bucket": gcp.bucket(Bucket.BACKUPS),
        "influxdb_bucket": model.services.influxdb.bucket,
        "restore_command": shlex.join(cloud_init.influxdb_restore_command()),
        # Grafana reads the read token when its container starts: restarted after a full restore.
        "monitoring_instance": gcp.monitoring.name,
        "grafana_unit": cloud_init.unit_name(catalog.GRAFANA),
    }



def main(argv: Sequence[str] | None = None) -> int:
    return stack_target.main(__doc__, restore_target, argv)


if __name__ == "__main__":
    sys.exit(main())
