"""Three real KRaft nodes (each a broker and a controller) on 127.0.0.1, as a three-broker stack runs them.

Each node is a `tests.kafka.broker.Broker` process with its own ports and storage, formatted with
one shared cluster id; its node id, rack, controller quorum and replication settings come from
`infra.render.cloud_init.KafkaNode.env`, the values the stack puts on each broker VM.
"""

from __future__ import annotations

import re
import string
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from infra.render import cloud_init
from tests.kafka.broker import HERE, Broker, cluster_id, run_tool, tools_env
from tests.ports import free_port

TOPICS_SCRIPT = HERE.parent.parent / "infra" / "render" / "templates" / "kafka-topics.sh"
RACKS = ("zone-a", "zone-b", "zone-c")
# A partition line of `kafka-topics.sh --describe` (tabs between the fields).
PARTITION_LINE = re.compile(
    r"Partition:\s*(\d+)\s+Leader:\s*(-?\d+)\s+Replicas:\s*([\d,]+)\s+Isr:\s*([\d,]*)")


def properties(env: dict[str, str]) -> str:
    """KAFKA_* variables as server properties, the way the apache/kafka image converts them."""
    return "\n".join(f"{key.removeprefix('KAFKA_').lower().replace('_', '.')}={value}"
                     for key, value in sorted(env.items()))


@dataclass
class ClusterNode(Broker):
    """One node of the test cluster: `node` says its id, rack and quorum; `cluster` its cluster id."""

    node: cloud_init.KafkaNode | None = None
    cluster: str = ""

    def format(self) -> None:
        """Render this node's server.properties and format its storage with the cluster's id."""
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        template = string.Template((HERE / "cluster-server.properties").read_text())
        config = self.workdir / "server.properties"
        config.write_text(template.substitute(
            broker_port=self.broker_port, controller_port=self.controller_port, log_dir=data,
            cluster_properties=properties(self.node.env)))
        done = subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "--cluster-id", self.cluster,
                       "--config", str(config), heap="-Xmx256m"),
            capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"kafka-storage format of node {self.node.node_id} failed:\n"
                               f"{done.stdout}{done.stderr}")

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
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        controller_ports = [free_port() for _ in RACKS]
        voters = tuple(f"127.0.0.1:{port}" for port in controller_ports)
        shared = cluster_id()
        for node_id, (rack, port) in enumerate(zip(RACKS, controller_ports, strict=True), start=1):
            node = cloud_init.KafkaNode(node_id, rack, voters, self.min_insync_replicas)
            folder = self.workdir / f"node-{node_id}"
            folder.mkdir(parents=True, exist_ok=True)
            self.nodes.append(ClusterNode(folder, controller_port=port, node=node, cluster=shared))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

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

    def create_topics(self, *topics: cloud_init.TopicSpec) -> subprocess.CompletedProcess:
        """The stacks' topic script with the full specs (replication factor, min ISR) against the cluster."""
        return subprocess.run(["bash", str(TOPICS_SCRIPT), self.bootstrap_servers, *(t.spec for t in topics)],
                              env=tools_env(), capture_output=True, text=True, timeout=600)

    def describe(self, topic: str) -> dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]]:
        """Partition -> (leader, replicas, in-sync replicas) as the cluster reports them."""
        done = run_tool("kafka-topics.sh", "--bootstrap-server", self.bootstrap_servers, "--describe",
                        "--topic", topic)
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

