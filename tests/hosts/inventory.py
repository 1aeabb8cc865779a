"""Host inventory for the testinfra suites, built from a stack's plain outputs (never secrets).

    pulumi stack output --json --stack dev > outputs.json         # no --show-secrets: not needed
    python tests/hosts/inventory.py --stack dev --outputs outputs.json --out .verify/dev
    HYDRO_VERIFY_INVENTORY=.verify/dev/inventory.json pytest tests/hosts

GCP stacks: the outputs must hold `project`, `zone` and `instances` (role -> instance name for
broker, tsdb, monitoring, dataproc_master); `kafka_brokers` (instance -> zone), when present, names
every broker, and each one is checked (a stack of three brokers has three broker hosts). The VMs have
no public IP: an ssh_config written next to the inventory reaches them through IAP (`gcloud compute
start-iap-tunnel`, in each VM's own zone), and testinfra's ssh backend uses it; docker and systemd are
inspected with sudo (OS Login admin role).
The local stack: its `containers` output maps each catalog service to its container on this
machine's Docker; testinfra inspects them from `local://` and runs commands in them with
`docker://<container>`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra import catalog

INVENTORY_ENV = "HYDRO_VERIFY_INVENTORY"
DATAPROC_MASTER = "dataproc_master"
ROLES = (catalog.BROKER, catalog.TSDB, catalog.MONITORING, DATAPROC_MASTER)
IAP_SSH_PORT = 22


@dataclass(frozen=True)
class RoleHosts:
    """Where one host of a role is checked: the VM (GCP), the Docker engine, and its containers."""

    name: str                              # the instance (GCP) or the stack's name for this machine
    node: str | None                       # testinfra spec of the VM; None on the local stack
    engine: str                            # testinfra spec of the host whose `docker` runs them
    containers: dict[str, str] = field(default_factory=dict)  # catalog service name -> container


@dataclass(frozen=True)
class Inventory:
    """Every role's hosts in one stack (several brokers, one of each other role), and the ssh_config
    that reaches them (GCP)."""

    stack: str
    target: str
    roles: dict[str, tuple[RoleHosts, ...]]
    ssh_config: str | None = None

    def to_json(self) -> str:
        """The inventory file `make verify` writes and the suites read."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        """An inventory read back from `to_json`'s text."""
        raw = json.loads(text)
        roles = {role: tuple(RoleHosts(**h) for h in hosts) for role, hosts in raw.pop("roles").items()}
        return cls(roles=roles, **raw)


def _service_names(role: str) -> list[str]:
    if role == DATAPROC_MASTER:
        return []
    return [service.name for service in catalog.services_for_role(role)]


def ssh_config(project: str, zones: dict[str, str], known_hosts: Path, user: str | None) -> str:
    """ssh_config reaching private VMs (instance -> zone) through an IAP TCP tunnel (no public IP, no
    bastion): one Host block per zone, since the tunnel names the VM's zone."""
    blocks = []
    for zone in sorted(set(zones.values())):
        lines = [f"Host {' '.join(sorted(name for name, z in zones.items() if z == zone))}",
                 f"  ProxyCommand gcloud compute start-iap-tunnel %h {IAP_SSH_PORT} --listen-on-stdin "
                 f"--zone {zone} --project {project} --verbosity=warning",
                 "  IdentityFile ~/.ssh/google_compute_engine",
                 "  HostKeyAlias %h",
                 f"  UserKnownHostsFile {known_hosts}",
                 "  StrictHostKeyChecking accept-new",
                 "  ConnectTimeout 30"]
        if user:
            lines.append(f"  User {user}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _require(outputs: dict[str, Any], key: str, stack: str) -> Any:
    if key not in outputs:
        raise SystemExit(f"stack {stack}: the outputs have no {key!r} (have: {', '.join(sorted(outputs))}); "
                         f"the host checks need it")
    return outputs[key]


def gcp_inventory(stack: str, outputs: dict[str, Any], out_dir: Path, user: str | None = None) -> Inventory:
    """Inventory of a GCP stack: each role's VM over ssh through IAP."""
    project = _require(outputs, "project", stack)
    zone = _require(outputs, "zone", stack)
    instances = _require(outputs, "instances", stack)
    missing = [role for role in ROLES if role not in instances]
    if missing:
        raise SystemExit(f"stack {stack}: output 'instances' lacks roles {missing}")
    brokers = outputs.get("kafka_brokers") or {instances[catalog.BROKER]: zone}
    if not isinstance(brokers, dict) or instances[catalog.BROKER] not in brokers:
        raise SystemExit(f"stack {stack}: output 'kafka_brokers' must map every broker instance to its zone, "
                         f"{instances[catalog.BROKER]!r} (instances.broker) included; got {brokers!r}")
    names = {role: [instances[role]] for role in ROLES}
    names[catalog.BROKER] = sorted(brokers)
    zones = {name: brokers.get(name, zone) for hosts in names.values() for name in hosts}
    config = out_dir / "ssh_config"
    config.write_text(ssh_config(project, zones, out_dir / "known_hosts", user))
    roles = {role: tuple(RoleHosts(name=name, node=f"ssh://{name}", engine=f"ssh://{name}",
                                   containers={n: n for n in _service_names(role)}) for name in hosts)
             for role, hosts in names.items()}
    return Inventory(stack=stack, target="gcp", roles=roles, ssh_config=str(config))


def local_inventory(stack: str, outputs: dict[str, Any]) -> Inventory:
    """Inventory of the local stack: containers on this machine's Docker engine."""
    running = _require(outputs, "containers", stack)
    if not isinstance(running, dict):
        raise SystemExit(f"stack {stack}: output 'containers' must map service -> container, got {running!r}")

    def containers(services: list[str]) -> dict[str, str]:
        absent = [name for name in services if name not in running]
        if absent:
            raise SystemExit(f"stack {stack}: output 'containers' lacks {absent}")
        return {name: running[name] for name in services}

    # One machine: a single node-exporter, checked with the monitoring role; Spark stands in for Dataproc.
    node_exporter = catalog.NODE_EXPORTER.name
    roles = {
        role: (RoleHosts(name=stack, node=None, engine="local://", containers=containers(
            [n for n in _service_names(role) if n != node_exporter or role == catalog.MONITORING])),)
        for role in ROLES if role != DATAPROC_MASTER
    }
    roles[DATAPROC_MASTER] = (RoleHosts(name=stack, node=None, engine="local://",
                                        containers=containers([catalog.SPARK.name])),)
    return Inventory(stack=stack, target="local", roles=roles)


def build_inventory(stack: str, outputs: dict[str, Any], out_dir: Path, user: str | None = None) -> Inventory:
    """The inventory of `stack` from its plain outputs (`pulumi stack output --json`)."""
    if "containers" in outputs and "instances" not in outputs:
        return local_inventory(stack, outputs)
    return gcp_inventory(stack, outputs, out_dir, user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="the deployed stack: local, dev, staging or prod")
    parser.add_argument("--outputs", required=True, type=Path,
                        help="`pulumi stack output --json` of the stack")
    parser.add_argument("--out", required=True, type=Path, help="folder for inventory.json and ssh_config")
    parser.add_argument("--ssh-user", help="OS Login user (gcloud compute os-login describe-profile)")
    args = parser.parse_args(argv)
    outputs = json.loads(args.outputs.read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    inventory = build_inventory(args.stack, outputs, args.out.resolve(), args.ssh_user)
    path = args.out / "inventory.json"
    path.write_text(inventory.to_json())
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
