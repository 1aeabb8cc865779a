"""The checks every role suite runs, on a GCP VM (ssh) or on the local stack's containers (docker).

Expectations come from the service catalog and the cloud-init renderer: the containers a role runs,
their ports, volumes, secret files and systemd units. Helpers read /proc rather than calling `ss`
or `netstat`, which the slim images and Container-Optimized OS may lack.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import testinfra
from hydrostream_jobs import contract
from inventory import DATAPROC_MASTER, Inventory, RoleHosts

from infra import catalog
from infra.local.stack import KAFKA_HOST_PORT
from infra.render import prometheus_volume
from infra.render.cloud_init import DEFAULT_DATA_DISK, unit_name
from tests.monitoring.stack_rules import rule_documents

SSH_PORT = 22
LOCAL_RESTART_POLICIES = ("always", "unless-stopped")
SECRET_ENV = re.compile(r"(TOKEN|PASSWORD|SECRET)", re.IGNORECASE)
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listening_ports(host) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket, from /proc/net/tcp and tcp6."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        result = host.run(f"cat {table}")
        if result.rc != 0:
            continue
        for line in result.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != _LISTEN:
                continue
            address, port = fields[1].split(":")
            found.add((_address(address, width), int(port, 16)))
    return found


def _address(hex_address: str, width: int) -> str:
    if width == 8:
        return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))
    words = [bytes.fromhex(hex_address[i:i + 8])[::-1].hex() for i in range(0, 32, 8)]
    return ":".join(w[j:j + 4] for w in words for j in (0, 4))


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address == "0000:0000:0000:0000:0000:0000:0000:0001"


def exposed_ports(host) -> set[int]:
    """Ports listening on an address other than loopback."""
    return {port for address, port in listening_ports(host) if not is_loopback(address)}


@dataclass(frozen=True)
class RoleTarget:
    """One host of one role of one stack (broker 2 of 3, say), ready to connect to."""

    inventory: Inventory
    role: str
    index: int = 0

    @property
    def hosts(self) -> RoleHosts:
        return self.inventory.roles[self.role][self.index]

    @property
    def id(self) -> str:
        """The test id of this host: its role and, for a role with several hosts, its name."""
        return self.role if len(self.inventory.roles[self.role]) == 1 else f"{self.role}-{self.hosts.name}"

    @property
    def on_gcp(self) -> bool:
        return self.inventory.target == "gcp"

    def connect(self, spec: str):
        return testinfra.get_host(spec, ssh_config=self.inventory.ssh_config, sudo=self.on_gcp)

    @property
    def engine(self):
        return self.connect(self.hosts.engine)

    @property
    def node(self):
        assert self.hosts.node is not None, f"{self.role}: the local stack has no VM"
        return self.connect(self.hosts.node)

    def services(self) -> list[catalog.Service]:
        return [catalog.SERVICES[name] for name in self.hosts.containers]

    def inspect(self, service: catalog.Service) -> dict:
        return self.engine.docker(self.hosts.containers[service.name]).inspect()


def expected_ports(services: Iterable[catalog.Service]) -> set[int]:
    return {port.number for service in services for port in service.ports if port.protocol == "tcp"}


# --- the checks, one per line of the issue ------------------------------------------------------

def check_containers_running_and_healthy(target: RoleTarget) -> None:
    for service in target.services():
        state = target.inspect(service)["State"]
        assert state["Running"], f"{service.name}: {state['Status']}"
        assert state.get("Health", {}).get("Status") == "healthy", (
            f"{service.name}: health {state.get('Health', {}).get('Status')}, last checks "
            f"{[c.get('Output', '')[-200:] for c in state.get('Health', {}).get('Log', [])[-2:]]}")


def check_ports_listening_only_where_expected(target: RoleTarget, extra: Iterable[int] = ()) -> None:
    expected = expected_ports(target.services()) | set(extra)
    if target.on_gcp:
        listening = exposed_ports(target.node)
        assert expected <= listening, f"not listening: {sorted(expected - listening)}"
        unexpected = listening - expected - {SSH_PORT}
        assert not unexpected, f"listening beyond the catalog's ports: {sorted(unexpected)}"
        return
    for service in target.services():
        bindings = target.inspect(service)["NetworkSettings"]["Ports"] or {}
        for container_port, published in bindings.items():
            if not published:
                continue
            number = int(container_port.split("/")[0])
            allowed = expected_ports([service]) | set(extra)
            assert number in allowed, f"{service.name} publishes {container_port}"
            for binding in published:
                assert binding["HostIp"].startswith("127."), (
                    f"{service.name} publishes {container_port} on {binding['HostIp']}: loopback only")


def check_data_disk_mounted(target: RoleTarget) -> None:
    if target.on_gcp:
        mount = target.node.mount_point(DEFAULT_DATA_DISK.mount_path)
        assert mount.exists, f"{DEFAULT_DATA_DISK.mount_path} is not mounted"
        assert mount.filesystem == "ext4"
    for service in target.services():
        mounts = {m["Destination"]: m for m in target.inspect(service)["Mounts"]}
        for volume in service.volumes:
            assert volume.container_path in mounts, f"{service.name}: {volume.container_path} not mounted"
            mount = mounts[volume.container_path]
            if target.on_gcp:
                assert mount["Source"].startswith(f"{DEFAULT_DATA_DISK.mount_path}/"), (
                    f"{service.name}: {volume.name} lives at {mount['Source']}, not on the data disk")
            else:
                assert mount["Type"] == "volume", f"{service.name}: {volume.name} is a {mount['Type']}"


def check_restarts_after_reboot(target: RoleTarget) -> None:
    for service in target.services():
        if target.on_gcp:
            unit = unit_name(service)
            assert target.node.service(unit).is_enabled, f"{unit} is not enabled"
            restart = target.node.run(f"systemctl show --property=Restart --value {shlex.quote(unit)}")
            assert restart.stdout.strip() == "always", f"{unit}: Restart={restart.stdout.strip()}"
        else:
            policy = target.inspect(service)["HostConfig"]["RestartPolicy"]["Name"]
            assert policy in LOCAL_RESTART_POLICIES, f"{service.name}: restart policy {policy!r}"


def check_no_secret_in_world_readable_files(target: RoleTarget, search_dirs: Iterable[str]) -> None:
    for service in target.services():
        config = target.inspect(service)["Config"]
        for entry in config.get("Env") or []:
            name = entry.split("=", 1)[0]
            assert not SECRET_ENV.search(name) or name.endswith("_FILE"), (
                f"{service.name}: secret-looking variable {name} (secrets travel as files)")
        for secret in service.secret_files:
            inside = target.connect(f"docker://{target.hosts.containers[service.name]}")
            mode = inside.file(secret.container_path).mode
            assert mode & 0o007 == 0, f"{service.name}: {secret.container_path} has mode {mode:o}"
        # The whole command line, which the local Spark container's jobs run with.
        args = " ".join(target.inspect(service).get("Args") or [])
        assert "--influx-token " not in args, f"{service.name}: a token on a command line"
    if not target.on_gcp:
        return
    node = target.node
    loose = node.run(f"find {catalog.SECRETS_DIR} -type f -perm /o=rwx")
    assert loose.rc == 0 and loose.stdout.strip() == "", f"secret files open to others: {loose.stdout}"
    # The secret values themselves in any world-readable file: grep reads the patterns from the
    # secret files, so no value reaches a command line or this test's output.
    dirs = " ".join(shlex.quote(d) for d in search_dirs)
    leaks = node.run(
        f"find {catalog.SECRETS_DIR} -type f -size +0 | while read -r secret; do "
        f"find {dirs} -xdev -type f -perm -o=r -print0 2>/dev/null | xargs -0 -r grep -lF -f \"$secret\"; "
        "done")
    assert leaks.stdout.strip() == "", f"secret values found in world-readable files: {leaks.stdout}"


# --- Prometheus, through any way of fetching an API path (docker exec + wget on the hosts) ------

def check_prometheus_loaded_every_rule_group(fetch: Callable[[str], str]) -> None:
    # Group names are the same on every stack: the rules rendered with dev's thresholds name them.
    expected = {group["name"] for document in rule_documents("dev").values() for group in document["groups"]}
    loaded = {group["name"] for group in json.loads(fetch("/api/v1/rules"))["data"]["groups"]}
    assert loaded == expected, f"rule groups loaded {sorted(loaded)}, shipped {sorted(expected)}"


def check_prometheus_scrapes_every_job(fetch: Callable[[str], str], all_up: bool = True) -> None:
    active = json.loads(fetch("/api/v1/targets"))["data"]["activeTargets"]
    jobs = {target["labels"]["job"] for target in active}
    expected_jobs = set(prometheus_volume.JOBS)
    assert jobs == expected_jobs, f"scrape jobs {sorted(jobs)}, not {sorted(expected_jobs)}"
    if all_up:
        down = {t["scrapeUrl"]: t["lastError"] for t in active if t["health"] != "up"}
        assert down == {}, f"targets down: {down}"


# --- what every role's host is checked for, and what differs per role ---------------------------

DATAPROC_AGENT = "google-dataproc-agent"
JOB_METRICS_PORTS = {contract.PRODUCER_METRICS_PORT, contract.CONSUMER_METRICS_PORT}


def _dataproc_running(target: RoleTarget) -> None:
    agent = target.node.service(DATAPROC_AGENT)
    assert agent.is_running, f"{DATAPROC_AGENT} is not running: jobs cannot be driven"
    drivers = target.node.run("pgrep -af 'consumer.py|producer.py'")
    assert "consumer.py" in drivers.stdout and "producer.py" in drivers.stdout, drivers.stdout


def _dataproc_ports(target: RoleTarget) -> None:
    # Dataproc's own daemons (YARN, HDFS, the agent) listen on ports the image decides: assert the
    # jobs' metrics ports listen rather than an exhaustive list.
    assert exposed_ports(target.node) >= JOB_METRICS_PORTS


def _dataproc_disk(target: RoleTarget) -> None:
    assert target.node.mount_point("/").exists
    assert target.node.file("/hadoop/dfs").is_directory, "no HDFS data directory on the master"


def _dataproc_restart(target: RoleTarget) -> None:
    assert target.node.service(DATAPROC_AGENT).is_enabled


def _dataproc_secrets(target: RoleTarget) -> None:
    commands = target.node.run("ps -eo args")
    assert "--influx-token " not in commands.stdout, "a token on a command line"
    dirs = " ".join(PROFILES[target.role].search_dirs)
    loose = target.node.run(f"find {dirs} -xdev -type f -iname '*token*' -perm -o=r 2>/dev/null")
    assert loose.stdout.strip() == "", loose.stdout


@dataclass(frozen=True)
class RoleProfile:
    """What the common checks need of one role beyond the catalog."""

    search_dirs: tuple[str, ...]               # where a leaked secret value would be looked for
    local_extra_ports: tuple[int, ...] = ()    # published by the local stack beyond the catalog's
    # Checks done differently on GCP (the Dataproc master is Google's image, not our containers).
    gcp_checks: dict[str, Callable[[RoleTarget], None]] = field(default_factory=dict)


_SYSTEM_DIRS = ("/etc", "/home", "/tmp", "/var/tmp")
_DISK = DEFAULT_DATA_DISK.mount_path
PROFILES: dict[str, RoleProfile] = {
    # Locally Kafka also advertises a listener for clients on the host (infra/local/stack.py).
    catalog.BROKER: RoleProfile(_SYSTEM_DIRS, local_extra_ports=(KAFKA_HOST_PORT,)),
    catalog.TSDB: RoleProfile((*_SYSTEM_DIRS, f"{_DISK}/influxdb-config")),
    catalog.MONITORING: RoleProfile((*_SYSTEM_DIRS, f"{_DISK}/prometheus-config",
                                     f"{_DISK}/grafana-provisioning")),
    DATAPROC_MASTER: RoleProfile(("/etc/hydrostream", "/home", "/tmp", "/var/tmp"), gcp_checks={
        "containers_running_and_healthy": _dataproc_running,
        "ports_listening_only_where_expected": _dataproc_ports,
        "data_disk_mounted": _dataproc_disk,
        "services_restart_after_reboot": _dataproc_restart,
        "no_secret_in_world_readable_files": _dataproc_secrets,
    }),
}

# One line of the host verification list each, run on every host of every role.
COMMON_CHECKS: dict[str, Callable[[RoleTarget], None]] = {
    "containers_running_and_healthy": check_containers_running_and_healthy,
    "ports_listening_only_where_expected": lambda target: check_ports_listening_only_where_expected(
        target, extra=() if target.on_gcp else PROFILES[target.role].local_extra_ports),
    "data_disk_mounted": check_data_disk_mounted,
    "services_restart_after_reboot": check_restarts_after_reboot,
    "no_secret_in_world_readable_files": lambda target: check_no_secret_in_world_readable_files(
        target, PROFILES[target.role].search_dirs),
}


def run_common_check(name: str, target: RoleTarget) -> None:
    """The common check `name` on `target`, the role's GCP variant where it has one."""
    overrides = PROFILES[target.role].gcp_checks if target.on_gcp else {}
    overrides.get(name, COMMON_CHECKS[name])(target)
