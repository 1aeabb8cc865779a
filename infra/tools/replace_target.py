"""Where a GCP stack's brokers are, for scripts/kafka-broker-gcp.sh (scripts/replace-broker.sh's driver).

    python -m infra.tools.replace_target STACK

prints KEY=VALUE lines: project; broker_<n> = the VM's name and zone, broker 1 first; the broker's
systemd unit, container, data folder on its VM and the user it runs as, and the folder in the container with
the admin's Kafka login files (kafka-start.sh writes them); all from the stack's model.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from infra import catalog
from infra.model import StackModel
from infra.render import cloud_init
from infra.services import kafka as kafka_service
from infra.tools import stack_target


def replace_target(model: StackModel) -> dict[str, str]:
    """Where a GCP stack's brokers are: project, `broker_<n>` = VM name and zone, the broker's unit,
    container and data folder on its VM."""
    if model.gcp is None:
        raise ValueError(f"stack {model.stack!r} is not on GCP: it has no broker VMs")
    (data,) = catalog.KAFKA.volumes
    target = {"project": model.gcp.project, "unit": cloud_init.unit_name(catalog.KAFKA),
              "container": catalog.KAFKA.name, "data": cloud_init.DEFAULT_DATA_DISK.volume_path(data),
              "user": catalog.KAFKA.user or "0", "sasl": kafka_service.SASL_DIR}
    for node_id, vm in enumerate(model.gcp.brokers, start=1):
        target[f"broker_{node_id}"] = f"{vm.name} {vm.zone}"
    return target


def main(argv: Sequence[str] | None = None) -> int:
    return stack_target.main(__doc__, replace_target, argv)


if __name__ == "__main__":
    sys.exit(main())
