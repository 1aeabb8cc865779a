"""The host verification suites (tests/hosts) in a normal run: they exist per role, compile, cover
what the issue asks, are collected only with an inventory, and their checks work and can fail.

The checks run for real where this machine has something real: the /proc socket reader and the
process checks through testinfra's `local://` backend against the Prometheus the monitoring tests
start. Docker and the GCP VMs are replaced by recorded `docker inspect` answers and a fake node.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import inspect
import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
import testinfra

from infra import catalog
from infra.render.prometheus_volume import JOBS

ROOT = Path(__file__).resolve().parents[2]
HOSTS_DIR = ROOT / "tests" / "hosts"
sys.path.insert(0, str(HOSTS_DIR))

import host_checks  # noqa: E402
from inventory import (  # noqa: E402
    INVENTORY_ENV,
    Inventory,
    RoleHosts,
    build_inventory,
    gcp_inventory,
    local_inventory,
)

# Role-particular suites; the common checks run on every host of every role from COMMON_SUITE.
SUITES = {
    "broker": "test_host_broker.py",
    "tsdb": "test_host_tsdb.py",
    "monitoring": "test_host_monitoring.py",
}
COMMON_SUITE = "test_host_roles.py"
ROLES = ("broker", "tsdb", "monitoring", "dataproc_master")
# One check per line of the host verification list.
REQUIRED_CHECKS = (
    "containers_running_and_healthy",
    "ports_listening_only_where_expected",
    "data_disk_mounted",
    "services_restart_after_reboot",
    "no_secret_in_world_readable_files",
)
GCP_OUTPUTS = {
    "project": "hydrostream-dev", "zone": "europe-west1-b",
    "instances": {"broker": "hydro-dev-broker", "tsdb": "hydro-dev-tsdb",
                  "monitoring": "hydro-dev-monitoring", "dataproc_master": "hydro-dev-dataproc-m"},
}
# A three-broker stack (prod's shape): broker 1 in the stack's zone, the others in theirs.
THREE_BROKERS = {
    **GCP_OUTPUTS,
    "instances": {**GCP_OUTPUTS["instances"], "broker": "hydro-prod-broker-1"},
    "kafka_brokers": {"hydro-prod-broker-1": "europe-west1-b", "hydro-prod-broker-2": "europe-west1-c",
                      "hydro-prod-broker-3": "europe-west1-d"},
}
LOCAL_OUTPUTS = {"containers": {name: f"hydrostream-{name}" for name in (
    "alertmanager", "grafana", "influxdb", "kafka", "node-exporter", "prometheus",
    "spark")}}


def test_hosts_directory_holds_exactly_the_role_suites():
    assert sorted(p.name for p in HOSTS_DIR.glob("test_*.py")) == sorted([*SUITES.values(), COMMON_SUITE])
    assert not (HOSTS_DIR / "__init__.py").exists()


def load_suite(filename: str):
    spec = importlib.util.spec_from_file_location(f"hostsuite_{Path(filename).stem}", HOSTS_DIR / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("role, filename", sorted(SUITES.items()))
def test_suite_compiles_names_its_role_and_checks_something(role, filename):
    source = (HOSTS_DIR / filename).read_text()
    tree = ast.parse(source, filename)
    compile(tree, filename, "exec")
    module = load_suite(filename)
    assert role == module.ROLE
    tests = [node for node in tree.body
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    assert tests, f"{filename} has no test"
    for test in tests:
        assert [a.arg for a in test.args.args] == ["role"], f"{test.name} must take the role fixture"
        calls = [n for n in ast.walk(test) if isinstance(n, ast.Call | ast.Assert)]
        assert calls, f"{filename}::{test.name} checks nothing"
    # The common checks are not repeated in the role suites.
    assert not {f"test_{name}" for name in REQUIRED_CHECKS} & {t.name for t in tests}


def test_the_common_suite_runs_every_required_check_on_every_role():
    module = load_suite(COMMON_SUITE)
    assert tuple(module.ROLES) == ROLES
    assert sorted(host_checks.COMMON_CHECKS) == sorted(REQUIRED_CHECKS)
    assert set(host_checks.PROFILES) == set(ROLES)
    for profile in host_checks.PROFILES.values():
        assert set(profile.gcp_checks) <= set(REQUIRED_CHECKS)
    assert list(inspect.signature(module.test_host).parameters) == ["role", "check"]


def run_pytest(*args: str, inventory: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != INVENTORY_ENV}
    if inventory is not None:
        env[INVENTORY_ENV] = str(inventory)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def suite_test_ids(hosts: dict[str, list[str]]) -> set[str]:
    """The test ids the suites must collect for `hosts` (role -> the host ids of that role)."""
    ids = set()
    for role, filename in SUITES.items():
        tree = ast.parse((HOSTS_DIR / filename).read_text())
        names = [node.name for node in tree.body
                 if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
        ids |= {f"tests/hosts/{filename}::{name}[{host}]" for name in names for host in hosts[role]}
    ids |= {f"tests/hosts/{COMMON_SUITE}::test_host[{host}-{check}]"
            for role in ROLES for host in hosts[role] for check in REQUIRED_CHECKS}
    return ids


def test_suites_are_not_collected_without_an_inventory_and_the_header_says_so():
    result = run_pytest("--collect-only", "tests/hosts")
    assert result.returncode == 5, result.stdout + result.stderr  # 5: no tests collected
    assert "host suites (tests/hosts/test_host_*.py): not collected" in result.stdout
    assert "collected 0 items" in result.stdout


def test_suites_are_all_collected_with_an_inventory(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(local_inventory("local", LOCAL_OUTPUTS).to_json())
    result = run_pytest("--collect-only", "-q", "tests/hosts", inventory=path)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = {line for line in result.stdout.splitlines() if line.startswith("tests/hosts/")}
    assert collected == suite_test_ids({role: [role] for role in ROLES})
    verbose = run_pytest("--collect-only", "tests/hosts", inventory=path)
    assert f"host suites: inventory {path}" in verbose.stdout


def test_every_broker_of_a_three_broker_stack_is_checked(tmp_path):
    path = tmp_path / "inventory.json"
    path.write_text(gcp_inventory("prod", THREE_BROKERS, tmp_path).to_json())
    result = run_pytest("--collect-only", "-q", "tests/hosts", inventory=path)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = {line for line in result.stdout.splitlines() if line.startswith("tests/hosts/")}
    brokers = [f"broker-hydro-prod-broker-{n}" for n in (1, 2, 3)]
    assert collected == suite_test_ids({"broker": brokers, **{role: [role] for role in ROLES[1:]}})


def test_a_missing_inventory_stops_the_run_naming_it(tmp_path):
    missing = tmp_path / "nowhere.json"
    result = run_pytest("--collect-only", "-q", "tests/hosts", inventory=missing)
    assert result.returncode not in (0, 5), result.stdout
    assert f"{INVENTORY_ENV}={missing}: no such inventory file" in result.stdout + result.stderr


# --- the inventory ------------------------------------------------------------------------------

def test_gcp_inventory_reaches_each_role_over_ssh_through_iap(tmp_path):
    inventory = gcp_inventory("dev", GCP_OUTPUTS, tmp_path, user="alice_example_com")
    assert inventory.target == "gcp"
    assert inventory.roles["broker"] == (RoleHosts(
        name="hydro-dev-broker", node="ssh://hydro-dev-broker", engine="ssh://hydro-dev-broker",
        containers={"kafka": "kafka", "node-exporter": "node-exporter"}),)
    assert inventory.roles["dataproc_master"][0].containers == {}
    assert set(inventory.roles["monitoring"][0].containers) == {
        "prometheus", "alertmanager", "grafana", "node-exporter"}
    config = Path(inventory.ssh_config).read_text()
    assert config.splitlines()[0] == ("Host hydro-dev-broker hydro-dev-dataproc-m hydro-dev-monitoring "
                                      "hydro-dev-tsdb")
    assert ("  ProxyCommand gcloud compute start-iap-tunnel %h 22 --listen-on-stdin "
            "--zone europe-west1-b --project hydrostream-dev --verbosity=warning") in config.splitlines()
    assert "  User alice_example_com" in config.splitlines()
    assert f"  UserKnownHostsFile {tmp_path / 'known_hosts'}" in config.splitlines()
    assert Inventory.from_json(inventory.to_json()) == inventory


def test_gcp_inventory_holds_every_broker_each_reached_in_its_zone(tmp_path):
    inventory = gcp_inventory("prod", THREE_BROKERS, tmp_path)
    assert [h.name for h in inventory.roles["broker"]] == [f"hydro-prod-broker-{n}" for n in (1, 2, 3)]
    assert [h.node for h in inventory.roles["broker"]] == [f"ssh://hydro-prod-broker-{n}" for n in (1, 2, 3)]
    for broker in inventory.roles["broker"]:
        assert set(broker.containers) == {"kafka", "node-exporter"}
    lines = Path(inventory.ssh_config).read_text().splitlines()
    hosts = [line for line in lines if line.startswith("Host ")]
    tunnels = [line.split("--zone ")[1].split()[0] for line in lines if "ProxyCommand" in line]
    # Written out by hand: broker 1 shares the stack's zone with the other roles.
    assert dict(zip(hosts, tunnels, strict=True)) == {
        "Host hydro-dev-dataproc-m hydro-dev-monitoring hydro-dev-tsdb hydro-prod-broker-1": "europe-west1-b",
        "Host hydro-prod-broker-2": "europe-west1-c",
        "Host hydro-prod-broker-3": "europe-west1-d",
    }
    assert Inventory.from_json(inventory.to_json()) == inventory


def test_gcp_inventory_refuses_brokers_that_miss_instances_broker(tmp_path):
    outputs = {**THREE_BROKERS, "kafka_brokers": {"hydro-prod-broker-2": "europe-west1-c"}}
    with pytest.raises(SystemExit, match=r"'hydro-prod-broker-1' \(instances.broker\) included"):
        gcp_inventory("prod", outputs, tmp_path)


@pytest.mark.parametrize("missing", ["project", "zone", "instances"])
def test_gcp_inventory_names_a_missing_output(tmp_path, missing):
    outputs = {k: v for k, v in GCP_OUTPUTS.items() if k != missing}
    with pytest.raises(SystemExit, match=f"no '{missing}'"):
        gcp_inventory("dev", outputs, tmp_path)


def test_gcp_inventory_names_a_missing_role(tmp_path):
    outputs = copy.deepcopy(GCP_OUTPUTS)
    del outputs["instances"]["tsdb"]
    with pytest.raises(SystemExit, match="tsdb"):
        gcp_inventory("dev", outputs, tmp_path)


def test_local_inventory_uses_the_stack_s_container_names(tmp_path):
    inventory = build_inventory("local", LOCAL_OUTPUTS, tmp_path)
    assert inventory.target == "local" and inventory.ssh_config is None
    assert inventory.roles["broker"] == (RoleHosts(
        name="local", node=None, engine="local://",
        containers={"kafka": "hydrostream-kafka"}),)
    assert inventory.roles["tsdb"][0].containers == {"influxdb": "hydrostream-influxdb"}
    assert inventory.roles["monitoring"][0].containers == {
        "prometheus": "hydrostream-prometheus", "alertmanager": "hydrostream-alertmanager",
        "grafana": "hydrostream-grafana",
        "node-exporter": "hydrostream-node-exporter"}
    assert inventory.roles["dataproc_master"][0].containers == {"spark": "hydrostream-spark"}
    with pytest.raises(SystemExit, match=r"lacks \['kafka'\]"):
        local_inventory("local", {"containers": {name: container for name, container
                                                 in LOCAL_OUTPUTS["containers"].items() if name != "kafka"}})
    with pytest.raises(SystemExit, match="must map service -> container"):
        local_inventory("local", {"containers": ["kafka"]})
    renamed = local_inventory("local", {"containers": {**LOCAL_OUTPUTS["containers"], "kafka": "hs-kafka"}})
    assert renamed.roles["broker"][0].containers["kafka"] == "hs-kafka"


def test_inventory_command_writes_the_file_make_verify_reads(tmp_path):
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(GCP_OUTPUTS))
    result = subprocess.run([sys.executable, str(HOSTS_DIR / "inventory.py"), "--stack", "dev", "--outputs",
                             str(outputs), "--out", str(tmp_path / "dev")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    written = Inventory.from_json((tmp_path / "dev" / "inventory.json").read_text())
    assert written.roles["tsdb"][0].node == "ssh://hydro-dev-tsdb"
    assert (tmp_path / "dev" / "ssh_config").is_file()


# --- the checks against recorded docker answers and a fake VM ---------------------------------

def healthy_container(service_ports: dict[str, str | None], mounts: list[dict], env: list[str]) -> dict:
    return {
        "State": {"Running": True, "Status": "running", "Health": {"Status": "healthy", "Log": []}},
        "NetworkSettings": {"Ports": {
            port: ([{"HostIp": host, "HostPort": port.split("/")[0]}] if host else None)
            for port, host in service_ports.items()}},
        "Mounts": mounts,
        "HostConfig": {"RestartPolicy": {"Name": "unless-stopped"}},
        "Config": {"Env": env},
        "Args": [],
    }


LOCAL_BROKER = {
    "kafka": healthy_container({"9092/tcp": "127.0.0.1", "9093/tcp": None, "9404/tcp": None},
                               [{"Destination": "/var/lib/kafka/data", "Type": "volume",
                                 "Source": "/var/lib/docker/volumes/hydrostream-kafka-data/_data"}],
                               ["KAFKA_NODE_ID=1"]),
    # The Kafka users' password files inside the container, by path: their modes (the secrets volume's).
    "files": {f"{catalog.SECRETS_DIR}/kafka-password-{user}": 0o400
              for user in ("hydro-admin", "hydro-producer", "hydro-consumer")},
}


@dataclass(frozen=True)
class RecordedRoleTarget(host_checks.RoleTarget):
    """A RoleTarget whose `docker inspect` answers are recorded, and whose VM is a fake."""

    recorded: dict = field(default_factory=dict)
    fake_node: object = None

    def inspect(self, service):
        return self.recorded[service.name]

    def connect(self, spec: str):
        """A container's files as recorded (`files`: path -> mode)."""
        files = self.recorded["files"]
        return SimpleNamespace(file=lambda path: SimpleNamespace(mode=files[path]))

    @property
    def node(self):
        return self.fake_node


def local_broker(recorded: dict) -> RecordedRoleTarget:
    inventory = local_inventory("local", LOCAL_OUTPUTS)
    return RecordedRoleTarget(inventory, "broker", recorded=recorded)


CHECKS = {
    "healthy": host_checks.check_containers_running_and_healthy,
    "ports": host_checks.check_ports_listening_only_where_expected,
    "data disk": host_checks.check_data_disk_mounted,
    "restart": host_checks.check_restarts_after_reboot,
    "secrets": lambda target: host_checks.check_no_secret_in_world_readable_files(target, ()),
}


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_local_checks_pass_on_a_healthy_broker(check):
    CHECKS[check](local_broker(LOCAL_BROKER))


def _broken(path: tuple, value) -> dict:
    recorded = copy.deepcopy(LOCAL_BROKER)
    node = recorded
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return recorded


@pytest.mark.parametrize("check, path, value, message", [
    ("healthy", ("kafka", "State", "Health", "Status"), "unhealthy", "health unhealthy"),
    ("healthy", ("kafka", "State", "Running"), False, "kafka: running"),
    ("ports", ("kafka", "NetworkSettings", "Ports", "9092/tcp"), [{"HostIp": "0.0.0.0", "HostPort": "9092"}],
     "on 0.0.0.0: loopback only"),
    ("ports", ("kafka", "NetworkSettings", "Ports", "8080/tcp"),
     [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "publishes 8080/tcp"),
    ("data disk", ("kafka", "Mounts", 0, "Type"), "bind", "kafka-data is a bind"),
    ("data disk", ("kafka", "Mounts"), [], "/var/lib/kafka/data not mounted"),
    ("restart", ("kafka", "HostConfig", "RestartPolicy", "Name"), "no", "restart policy 'no'"),
    ("secrets", ("kafka", "Config", "Env"), ["INFLUX_TOKEN=abc"], "secret-looking variable INFLUX_TOKEN"),
    ("secrets", ("kafka", "Args"), ["--influx-token", "abc"], "kafka: a token on a command line"),
    ("secrets", ("files", f"{catalog.SECRETS_DIR}/kafka-password-hydro-producer"), 0o444,
     "kafka-password-hydro-producer has mode 444"),
])
def test_each_local_check_fails_on_what_it_guards(check, path, value, message):
    with pytest.raises(AssertionError, match=message):
        CHECKS[check](local_broker(_broken(path, value)))


def test_local_port_check_accepts_a_declared_extra_port_only():
    recorded = _broken(("kafka", "NetworkSettings", "Ports", "9094/tcp"),
                       [{"HostIp": "127.0.0.1", "HostPort": "9094"}])
    with pytest.raises(AssertionError, match="kafka publishes 9094/tcp"):
        host_checks.check_ports_listening_only_where_expected(local_broker(recorded))
    host_checks.check_ports_listening_only_where_expected(local_broker(recorded), extra=(9094,))


# /proc/net/tcp rows: 0.0.0.0:9092 and 127.0.0.1:9090 listening, 10.0.0.5:22 listening,
# one established connection; /proc/net/tcp6: [::]:9093 listening.
PROC_TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:2384 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000    65534        0 2 1
   2: 0500000A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0500000A:2384 0600000A:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4 1
"""
PROC_TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:2385 00000000000000000000000000000000:0000 0A 0 0 0 0 0 0 5 1
"""


@dataclass
class _Result:
    stdout: str
    rc: int = 0
    stderr: str = ""


@dataclass
class FakeNode:
    files: dict[str, str]

    def run(self, command: str) -> _Result:
        name = command.removeprefix("cat ")
        return _Result(self.files[name]) if name in self.files else _Result("", 1)


def test_proc_reader_finds_listening_sockets_with_their_addresses():
    node = FakeNode({"/proc/net/tcp": PROC_TCP, "/proc/net/tcp6": PROC_TCP6})
    assert host_checks.listening_ports(node) == {
        ("0.0.0.0", 9092), ("127.0.0.1", 9090), ("10.0.0.5", 22),
        ("0000:0000:0000:0000:0000:0000:0000:0000", 9093)}
    assert host_checks.exposed_ports(node) == {9092, 22, 9093}


def test_gcp_port_check_wants_exactly_the_catalog_s_ports_beside_ssh(tmp_path):
    inventory = gcp_inventory("dev", GCP_OUTPUTS, tmp_path)

    def broker(tcp: str) -> RecordedRoleTarget:
        return RecordedRoleTarget(inventory, "broker", fake_node=FakeNode(
            {"/proc/net/tcp": tcp, "/proc/net/tcp6": PROC_TCP6}))

    check = host_checks.check_ports_listening_only_where_expected
    # PROC_TCP/PROC_TCP6 hold Kafka's 9092 and 9093, ssh, and 9090 on loopback (ignored).
    with pytest.raises(AssertionError, match=r"not listening: \[9100, 9404\]"):
        check(broker(PROC_TCP))
    with pytest.raises(AssertionError, match=r"beyond the catalog's ports: \[9300\]"):
        check(broker(PROC_TCP + _rows(9404, 9100, 9300)))
    check(broker(PROC_TCP + _rows(9404, 9100)))


def _rows(*ports: int) -> str:
    return "".join(f"  9{i}: 00000000:{port:04X} 00000000:0000 0A 0 0 0 0 0 0 9{i} 1\n"
                   for i, port in enumerate(ports))


# --- for real, against the Prometheus the monitoring tests start -------------------------------

def test_proc_reader_sees_the_running_prometheus_listen_on_loopback_only(running_prometheus):
    local = testinfra.get_host("local://")
    assert ("127.0.0.1", running_prometheus.port) in host_checks.listening_ports(local)
    assert running_prometheus.port not in host_checks.exposed_ports(local)


def test_testinfra_sees_the_prometheus_process_and_its_config(running_prometheus):
    local = testinfra.get_host("local://")
    process = local.process.get(pid=running_prometheus.process.pid)
    assert process.comm == "prometheus"
    config = next(arg for arg in process.args.split() if arg.startswith("--config.file="))
    assert local.file(config.split("=", 1)[1]).contains("job_name: \"prometheus\"")


def _fetch_from(server):
    def fetch(path: str) -> str:
        with urllib.request.urlopen(f"{server.base}{path}", timeout=5) as response:
            return response.read().decode()
    return fetch


def test_monitoring_suite_s_prometheus_checks_pass_on_the_running_prometheus(running_prometheus):
    fetch = _fetch_from(running_prometheus)
    running_prometheus.wait_for(lambda: "hydrostream" in fetch("/api/v1/rules"), 30, "the rules")
    # Targets appear once the scrape manager has synced its first target groups (a few seconds).
    running_prometheus.wait_for(
        lambda: len(json.loads(fetch("/api/v1/targets"))["data"]["activeTargets"]) >= len(JOBS), 30,
        "the scrape targets")
    host_checks.check_prometheus_loaded_every_rule_group(fetch)
    host_checks.check_prometheus_scrapes_every_job(fetch, all_up=False)
    # Its job targets point at a closed port: the all-up check must notice.
    with pytest.raises(AssertionError, match="targets down"):
        host_checks.check_prometheus_scrapes_every_job(fetch)
