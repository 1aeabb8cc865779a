"""Three real KRaft nodes (each a broker and a controller) on 127.0.0.1, as a three-broker stack runs them.

Each node is a `tests.kafka.broker.Broker` process with its own ports and storage, formatted with
one shared cluster id by the brokers' own format script (infra/render/templates/kafka-format.sh: a
dynamic quorum, every node formatted with the same --initial-controllers); its node id, rack,
controller quorum and replication settings come from `infra.render.kafka_service.KafkaNode.env`, the
values the stack puts on each broker VM. tests/kafka/broker-driver.sh reaches the nodes for
scripts/replace-broker.sh, from the files `Cluster` writes into its folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shlex
import signal
import string
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hydrostream_jobs.kafka import KafkaLogin, sasl_options

from infra import catalog
from infra.services import kafka as kafka_service
from tests.kafka.broker import BROKER_HEAP, HERE, Broker, cluster_id, run_tool, tools_env
from tests.ports import free_port

TEMPLATES = HERE.parent.parent / "infra" / "render" / "templates"
TOPICS_SCRIPT = TEMPLATES / "kafka-topics.sh"
FORMAT_SCRIPT = TEMPLATES / "kafka-format.sh"
SASL_FILES_SCRIPT = TEMPLATES / "kafka-sasl-files.sh"
ACCESS_SCRIPT = TEMPLATES / "kafka-access.sh"
SETUP_SCRIPT = TEMPLATES / "kafka-setup.sh"
DRIVER = HERE / "broker-driver.sh"
REPLACE_SCRIPT = HERE.parent.parent / "scripts" / "replace-broker.sh"
RACKS = ("zone-a", "zone-b", "zone-c")
# The test nodes' listeners are the catalog's (cluster-server.properties lays them out on loopback).
LISTENERS = catalog.KAFKA_LISTENERS
# A partition line of `kafka-topics.sh --describe` (tabs between the fields).
PARTITION_LINE = re.compile(
    r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+)\s+Replicas:\s*([\d,]+)\s+Isr:\s*([\d,]*)")


def properties(env: dict[str, str]) -> str:
    """KAFKA_* variables as server properties, the way the apache/kafka image converts them."""
    return "\n".join(f"{key.removeprefix('KAFKA_').lower().replace('_', '.')}={value}"
                     for key, value in sorted(env.items()))


@dataclass(frozen=True)
class Logins:
    """The stack's Kafka users (infra/services/kafka.py) with a password each, one file per user in
    `secrets` as a broker VM has them on tmpfs; `sasl` is what kafka-sasl-files.sh makes of the admin's."""

    secrets: Path
    sasl: Path

    @classmethod
    def create(cls, folder: Path) -> Logins:
        """Fresh passwords (letters and digits, as the stacks generate them) and the admin's files."""
        logins = cls(folder / "secrets", folder / "sasl")
        logins.secrets.mkdir(parents=True, exist_ok=True)
        for user in kafka_service.login_users():
            logins.password_file(user).write_text(secrets.token_hex(16) + "\n")
        done = subprocess.run(["bash", str(SASL_FILES_SCRIPT), kafka_service.ADMIN_USER,
                               str(logins.password_file(kafka_service.ADMIN_USER)), str(logins.sasl)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"kafka-sasl-files.sh failed:\n{done.stderr}")
        return logins

    def password_file(self, user: str) -> Path:
        """Where `user`'s password is, named as on a broker (catalog.kafka_password)."""
        return self.secrets / catalog.kafka_password(user)

    @property
    def admin_config(self) -> Path:
        """The admin's client config for the tools (--command-config)."""
        return self.sasl / "admin.properties"

    @property
    def controller_config(self) -> Path:
        """The admin's client config on the controller listener (--bootstrap-controller)."""
        return self.sasl / "controller.properties"

    def client_config(self, user: str, password: str | None = None) -> Path:
        """A tool's client config logging in as `user` with its password (or with another `password`): the
        jobs' client options (hydrostream_jobs.kafka.sasl_options) without Spark's `kafka.` prefix."""
        given = password is not None
        login = KafkaLogin(user, password if given else self.password_file(user).read_text().strip())
        path = self.sasl / f"{user}{'-given' if given else ''}.properties"
        path.write_text("".join(f"{key.removeprefix('kafka.')}={value}\n"
                                for key, value in sasl_options(login).items()))
        return path

    def job_args(self, user: str) -> list[str]:
        """A job's command-line login as `user`."""
        return ["--kafka-user", user, "--kafka-password-file", str(self.password_file(user))]


@dataclass
class ClusterNode(Broker):
    """One node of the test cluster: `node` says its id, rack and quorum; `cluster` its cluster id;
    `logins` (None: no authentication) the users its brokers authenticate and authorize."""

    node: kafka_service.KafkaNode | None = None
    cluster: str = ""
    logins: Logins | None = None

    def format(self) -> None:
        """Render this node's server.properties and start.sh, and format its storage with the cluster's id
        by the brokers' format script."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        template = string.Template((HERE / "cluster-server.properties").read_text())
        config = self.workdir / "server.properties"
        env = dict(self.node.env)
        format_env = tools_env()
        if self.logins is not None:
            env.update(kafka_service.sasl_env(LISTENERS))
            self.jaas = self.logins.sasl / "jaas.conf"
            format_env["KAFKA_SASL_DIR"] = str(self.logins.sasl)
        config.write_text(template.substitute(
            broker_port=self.broker_port, controller_port=self.controller_port, log_dir=data,
            cluster_properties=properties(env)))
        start = self._java("kafka.Kafka", str(config), heap=BROKER_HEAP)
        (self.workdir / "start.sh").write_text(f"exec {shlex.join(start)}\n")
        done = subprocess.run(["bash", str(FORMAT_SCRIPT), str(config), self.cluster,
                               self.node.initial_controllers],
                              env=format_env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format of node {self.node.node_id} failed:\n"
                               f"{done.stdout}{done.stderr}")

    @property
    def directory_id(self) -> str:
        """The directory id its log directory was formatted with (meta.properties)."""
        meta = (self.workdir / "data" / "meta.properties").read_text()
        return re.search(r"^directory\.id=(\S+)$", meta, re.MULTILINE).group(1)

    def stop(self) -> None:
        """As Broker.stop, and the process broker-driver.sh started in its place, if any."""
        super().stop()
        pid_file = self.workdir / "pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            pid_file.unlink()

    def kill(self) -> None:
        """SIGKILL, as a lost VM: no clean shutdown, no leadership handed over."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None


@dataclass
class Cluster:
    """Three nodes of one cluster; `bootstrap_servers` lists all of them, as the stack's outputs do."""

    workdir: Path
    min_insync_replicas: int = 2
    racks: tuple[str, ...] = RACKS          # one node per rack
    logins: Logins | None = None            # None: no authentication, no ACLs
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.logins is not None and self.logins.sasl != self.workdir / "sasl":
            raise ValueError("make the logins in the cluster's folder (Logins.create(workdir)): "
                             "broker-driver.sh looks for them in its sasl/")
        controller_ports = [free_port() for _ in self.racks]
        voters = tuple(f"127.0.0.1:{port}" for port in controller_ports)
        shared = cluster_id()
        for node_id, (rack, port) in enumerate(zip(self.racks, controller_ports, strict=True), start=1):
            node = kafka_service.KafkaNode(node_id, rack, voters, self.min_insync_replicas)
            folder = self.workdir / f"node-{node_id}"
            folder.mkdir(parents=True, exist_ok=True)
            self.nodes.append(ClusterNode(folder, controller_port=port, node=node, cluster=shared,
                                          logins=self.logins))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def controllers(self) -> str:
        return ",".join(self.nodes[0].node.voters)

    def format(self) -> None:
        """Format the nodes together (each probes the others' controllers first), and write what
        broker-driver.sh reads."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for formatted in [pool.submit(node.format) for node in self.nodes]:
                formatted.result()
        (self.workdir / "controllers").write_text(self.controllers)
        (self.workdir / "bootstrap").write_text(self.bootstrap_servers)
        (self.workdir / "initial-controllers").write_text(self.nodes[0].node.initial_controllers)

    def replace_broker(self, node_id: int, *steps: str, replication_timeout_s: int = 240,
                       timeout: float = 600) -> subprocess.CompletedProcess:
        """scripts/replace-broker.sh with this cluster's driver (`steps`: all of them when none)."""
        state = self.workdir / f"replace-{node_id}"
        state.mkdir(exist_ok=True)
        return subprocess.run(["bash", str(REPLACE_SCRIPT), str(DRIVER), str(node_id), *steps],
                              env={**tools_env(), "HYDRO_CLUSTER_DIR": str(self.workdir),
                                   "REPLACE_BROKER_STATE": str(state),
                                   "REPLICATION_TIMEOUT_S": str(replication_timeout_s)},
                              capture_output=True, text=True, timeout=timeout)

    def login(self, controller: bool = False) -> list[str]:
        """The admin's --command-config for a tool (on the controller listener with `controller`)."""
        if self.logins is None:
            return []
        config = self.logins.controller_config if controller else self.logins.admin_config
        return ["--command-config", str(config)]

    @property
    def admin_config(self) -> Path | None:
        """The admin's client config (None: no authentication)."""
        return None if self.logins is None else self.logins.admin_config

    def job_login(self, user: str) -> tuple[str, ...]:
        """A job's --kafka-user options as `user` (none without authentication)."""
        return () if self.logins is None else tuple(self.logins.job_args(user))

    def tools_env(self) -> dict[str, str]:
        """The scripts' environment, logged in as the admin on an authenticating cluster."""
        env = tools_env()
        if self.logins is not None:
            env["KAFKA_CLIENT_CONFIG"] = str(self.logins.admin_config)
        return env

    def set_up(self, *topics: kafka_service.TopicSpec) -> subprocess.CompletedProcess:
        """What a stack's broker runs at every boot (kafka-setup.sh with `kafka_setup_args`, logging in from
        the admin's password file alone): `topics`, and the stacks' users, passwords and ACLs."""
        spec = kafka_service.KafkaSpec(catalog.KAFKA, kafka_service.MIN_HEAP_MB, topics)
        args = kafka_service.kafka_setup_args(spec, self.bootstrap_servers, str(self.logins.secrets))
        return subprocess.run(["bash", str(SETUP_SCRIPT), *args], env=tools_env(), capture_output=True,
                              text=True, timeout=300)

    def grant_access(self, *topics: str) -> subprocess.CompletedProcess:
        """The stacks' users and ACLs (infra/services/kafka.py `access`) by the brokers' script, and the same
        on each of `topics` (a test's own topics)."""
        grants = kafka_service.access()
        specs = [grant.spec for grant in grants]
        specs += [dataclasses.replace(grant, topic=topic).spec for topic in topics for grant in grants]
        return subprocess.run(["bash", str(ACCESS_SCRIPT), self.bootstrap_servers, str(self.logins.secrets),
                               *specs], env=self.tools_env(), capture_output=True, text=True, timeout=300)

    def quorum(self, *args: str) -> str:
        """kafka-metadata-quorum against the controllers; its output."""
        done = run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", self.controllers,
                        *self.login(controller=True), *args)
        if done.returncode != 0:
            raise AssertionError(done.stderr[-3000:])
        return done.stdout

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def start(self, *nodes: ClusterNode, timeout: float = 240) -> None:
        """Start the nodes together (a node's broker waits for a quorum of controllers to answer)."""
        nodes = nodes or tuple(self.nodes)
        with ThreadPoolExecutor(len(nodes)) as pool:
            for started in [pool.submit(node.start, timeout) for node in nodes]:
                started.result()

    def stop(self) -> None:
        """Stop the nodes together: one by one, the last ones wait out the grace for a lost quorum."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            for stopped in [pool.submit(node.stop) for node in self.nodes]:
                stopped.result()

    def create_topics(self, *topics: kafka_service.TopicSpec) -> subprocess.CompletedProcess:
        """The stacks' topic script with the full specs (replication factor, min ISR) against the cluster."""
        return subprocess.run(["bash", str(TOPICS_SCRIPT), self.bootstrap_servers, *(t.spec for t in topics)],
                              env=self.tools_env(), capture_output=True, text=True, timeout=600)

    def describe(self, topic: str) -> dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]]:
        """Partition -> (leader, replicas, in-sync replicas) as the cluster reports them."""
        done = run_tool("kafka-topics.sh", "--bootstrap-server", self.bootstrap_servers, *self.login(),
                        "--describe", "--topic", topic)
        if done.returncode != 0:
            raise AssertionError(done.stderr[-3000:])
        found = {}
        for line in PARTITION_LINE.finditer(done.stdout):
            partition, leader, replicas, isr = line.groups()
            found[int(partition)] = (int(leader), tuple(map(int, replicas.split(","))),
                                     tuple(int(n) for n in isr.split(",") if n))
        return found

    def wait_for(self, topic: str, predicate, what: str, timeout: float = 180) -> dict:
        """Describe `topic` until `predicate(partitions)` holds; fails naming `what` and the last state."""
        deadline, state = time.time() + timeout, {}
        while time.time() < deadline:
            state = self.describe(topic)
            if state and predicate(state):
                return state
            time.sleep(1)
        raise AssertionError(f"{what} did not happen within {timeout}s: {state}")

