"""Kafka's service spec: listeners, heap, topics and environment, the same for a broker VM and a container.

`kafka_spec` is where Kafka's heap comes from on every target: a quarter of the memory the broker is
given (`sizing.kafka_heap_mb`): the VM's shape on GCP, the container's limit on the local stack. The
topics are validated here once; a renderer (infra/render/cloud_init.py, infra/local/stack.py) only
decides how each listener is advertised and, on a larger cluster, the node's place in it.

Every broker (a VM, the local container, the test brokers) loads the Prometheus JMX exporter agent
(`catalog.KAFKA_METRICS_AGENT`, the jar infra/release/broker-agent.lock pins) with one config,
`METRICS_AGENT_CONFIG`: the broker's own metrics, on its own port.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from hydrostream_jobs import contract
from hydrostream_jobs.kafka import SASL_MECHANISM

from infra import catalog, sizing
from infra.paths import PROJECT_DIR

MS_PER_HOUR = 3_600_000
MIN_HEAP_MB = 256
# Which MBeans the metrics agent reads and how it names them: one file for every broker.
METRICS_AGENT_CONFIG = PROJECT_DIR / "monitoring" / "kafka" / "jmx-exporter.yml"

_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_HOST_PORT = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?:[0-9]{1,5}")
_RACK = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_LISTENER_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


@dataclass(frozen=True)
class TopicSpec:
    """A Kafka topic the stack creates (the broker does not auto-create topics)."""

    name: str
    partitions: int
    retention_ms: int  # -1: keep forever
    replication_factor: int = 1
    min_insync_replicas: int = 1

    def __post_init__(self) -> None:
        if not _TOPIC_NAME.fullmatch(self.name) or self.name in (".", ".."):
            raise ValueError(f"topic name {self.name!r}: use up to 249 of [A-Za-z0-9._-]")
        if self.partitions < 1:
            raise ValueError(f"topic {self.name!r}: partitions must be at least 1, got {self.partitions}")
        if self.retention_ms < 1 and self.retention_ms != -1:
            raise ValueError(f"topic {self.name!r}: retention_ms must be > 0 or -1, got {self.retention_ms}")
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise ValueError(f"topic {self.name!r}: min_insync_replicas must be from 1 to the replication "
                             f"factor {self.replication_factor}, got {self.min_insync_replicas}")

    @property
    def spec(self) -> str:
        """The topic as kafka-topics.sh takes it: NAME:PARTITIONS:RETENTION_MS:REPLICATION:MIN_ISR."""
        return (f"{self.name}:{self.partitions}:{self.retention_ms}:"
                f"{self.replication_factor}:{self.min_insync_replicas}")


# KIP-853 (Kafka 3.9): the quorum's voters live in the metadata log (kraft.version 1), each voter named by its
# node id and the directory id of its metadata log, so a voter whose log was lost can be removed and the
# node added again under a new directory id. Every node is formatted with the same --initial-controllers
# (`KafkaNode.initial_controllers`), and finds the quorum through controller.quorum.bootstrap.servers.
_DIRECTORY_IDS = uuid.UUID("5d0f3c2e-9a41-4f57-8a7e-6b1c2d3e4f50")


def initial_directory_id(node_id: int, voter: str) -> str:
    """The metadata directory id node `node_id` at `voter` (host:port) is first formatted with, in Kafka's
    Uuid text form; only the cluster's first formation uses it (a replaced node gets a random one). Never
    one starting with "-", which Kafka's tools would read as an option (Kafka's own Uuid.randomUuid draws
    again too): the next draw of the same name then."""
    draw = 0
    while True:
        name = f"{node_id}@{voter}" if draw == 0 else f"{node_id}@{voter}#{draw}"
        text = base64.urlsafe_b64encode(uuid.uuid5(_DIRECTORY_IDS, name).bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text
        draw += 1


@dataclass(frozen=True)
class KafkaNode:
    """One broker's place in its KRaft cluster (every node is a broker and a controller)."""

    node_id: int
    rack: str                   # `broker.rack`: the VM's zone, so replicas spread across zones
    voters: tuple[str, ...]     # every controller's host:port, node 1 first (node ids are 1..n)
    min_insync_replicas: int

    def __post_init__(self) -> None:
        if not 1 <= self.node_id <= len(self.voters):
            raise ValueError(f"Kafka node id {self.node_id}: must be from 1 to the {len(self.voters)} voters")
        if len(set(self.voters)) != len(self.voters) or not all(_HOST_PORT.fullmatch(v) for v in self.voters):
            raise ValueError(f"Kafka voters {self.voters!r}: distinct host:port addresses")
        if not _RACK.fullmatch(self.rack):
            raise ValueError(f"Kafka rack {self.rack!r}: a zone name such as europe-west1-b")
        if not 1 <= self.min_insync_replicas <= max(1, len(self.voters) - 1):
            raise ValueError(f"Kafka min_insync_replicas {self.min_insync_replicas}: from 1 to one fewer "
                             f"than the {len(self.voters)} brokers (1 for a single broker)")

    @property
    def initial_controllers(self) -> str:
        """`kafka-storage format --initial-controllers`: every voter as id@host:port:directory-id."""
        return ",".join(f"{node_id}@{voter}:{initial_directory_id(node_id, voter)}"
                        for node_id, voter in enumerate(self.voters, start=1))

    @property
    def env(self) -> dict[str, str]:
        """What this broker sets in place of the catalog's single-broker values: its id, rack, quorum
        (found through the controllers: the voters are in the metadata log, never in the configuration)
        and replication."""
        replicas = str(len(self.voters))
        return {
            "KAFKA_NODE_ID": str(self.node_id),
            "KAFKA_BROKER_RACK": self.rack,
            "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS": ",".join(self.voters),
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": replicas,
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": replicas,
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": str(self.min_insync_replicas),
            "KAFKA_DEFAULT_REPLICATION_FACTOR": replicas,
            "KAFKA_MIN_INSYNC_REPLICAS": str(self.min_insync_replicas),
        }


def cluster_nodes(racks: tuple[str, ...], ips: tuple[str, ...],
                  min_insync_replicas: int) -> tuple[KafkaNode, ...]:
    """Node ids 1..n, each in its rack (a VM's zone), voting in a quorum of all (`ips`: each node's address);
    a single node is its own quorum over loopback."""
    if len(ips) != len(racks):
        raise ValueError(f"{len(racks)} brokers need {len(racks)} addresses, got {len(ips)}")
    controller = catalog.KAFKA.port("controller")
    voters = (f"localhost:{controller}",) if len(ips) == 1 else tuple(f"{ip}:{controller}" for ip in ips)
    return tuple(KafkaNode(node_id, rack, voters, min_insync_replicas)
                 for node_id, rack in enumerate(racks, start=1))


@dataclass(frozen=True)
class KafkaSpec:
    """Kafka as every target runs it: the catalog service, its listeners, heap and topics."""

    service: catalog.Service                       # image, ports, volumes, health check, user
    heap_mb: int                                   # -Xms = -Xmx, from sizing
    topics: tuple[TopicSpec, ...]
    listeners: tuple[catalog.KafkaListener, ...] = catalog.KAFKA_LISTENERS

    def __post_init__(self) -> None:
        if self.heap_mb < MIN_HEAP_MB:
            raise ValueError(f"Kafka heap_mb must be at least {MIN_HEAP_MB}, got {self.heap_mb}")
        names = [topic.name for topic in self.topics]
        missing = [t for t in (contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC) if t not in names]
        if missing or len(set(names)) != len(names):
            raise ValueError(f"topics must name each of {missing or names} once, got {names}")
        listener_names = [listener.name for listener in self.listeners]
        if len(set(listener_names)) != len(listener_names) or not all(
                _LISTENER_NAME.fullmatch(name) for name in listener_names):
            raise ValueError(f"Kafka listeners {listener_names}: distinct upper-case names")
        if not any(listener.controller for listener in self.listeners):
            raise ValueError(f"Kafka listeners {listener_names}: one must be the controller's")

    @property
    def heap_opts(self) -> str:
        """KAFKA_HEAP_OPTS: a fixed heap, so the broker never resizes it under load."""
        return f"-Xms{self.heap_mb}m -Xmx{self.heap_mb}m"

    @property
    def client_listeners(self) -> tuple[catalog.KafkaListener, ...]:
        """The listeners clients connect to (every one but the controller's), which are advertised."""
        return tuple(listener for listener in self.listeners if not listener.controller)

    def with_listener(self, listener: catalog.KafkaListener) -> KafkaSpec:
        """The same broker with one more client listener (and its port)."""
        service = dataclasses.replace(
            self.service, ports=(*self.service.ports, catalog.Port(listener.name.lower(), listener.port)))
        return dataclasses.replace(self, service=service, listeners=(*self.listeners, listener))

    def env(self, advertised_hosts: Mapping[str, str], node: KafkaNode) -> dict[str, str]:
        """The container's whole environment; `advertised_hosts`: client listener name -> the host clients
        reach it at; `node`: this broker's place in its cluster."""
        wanted = {listener.name for listener in self.client_listeners}
        if set(advertised_hosts) != wanted:
            raise ValueError(f"advertise each of the Kafka listeners {sorted(wanted)}, got "
                             f"{sorted(advertised_hosts)}")
        too_many = [t.name for t in self.topics if t.replication_factor > len(node.voters)]
        if too_many:
            raise ValueError(f"topics {too_many}: replication factor above the {len(node.voters)} brokers")
        env = dict(self.service.env)
        # In place, so the catalog's order is kept.
        env.update(catalog.kafka_listener_env(self.listeners))
        env.update(sasl_env(self.listeners))
        env["KAFKA_ADVERTISED_LISTENERS"] = ",".join(
            f"{listener.name}://{advertised_hosts[listener.name]}:{listener.port}"
            for listener in self.client_listeners)
        env["KAFKA_HEAP_OPTS"] = self.heap_opts
        env.update(node.env)
        return env


class TopicSettings(Protocol):
    """What the topics are made of (the stack's `kafka` settings have it)."""

    partitions: int
    retention_hours: int
    dead_letter_retention_hours: int

    @property
    def replication_factor(self) -> int: ...

    @property
    def min_isr(self) -> int: ...


def topics(kafka: TopicSettings) -> tuple[TopicSpec, ...]:
    """The readings topic and its dead-letter topic: the stack's partitions, retention and replication."""
    replication = {"replication_factor": kafka.replication_factor, "min_insync_replicas": kafka.min_isr}
    return (
        TopicSpec(contract.READINGS_TOPIC, kafka.partitions, kafka.retention_hours * MS_PER_HOUR,
                  **replication),
        TopicSpec(contract.DEAD_LETTER_TOPIC, kafka.partitions,
                  kafka.dead_letter_retention_hours * MS_PER_HOUR, **replication),
    )


# Who may do what (issue 29): every client logs in with SASL/SCRAM-SHA-512 as a user of its own, and
# Kafka's KRaft authorizer allows only what `access` lists. The admin (the brokers between themselves, the
# operator's tools and the boot units that make topics and users) is the only super user; a job can
# neither alter nor delete a topic. SCRAM rather than mTLS: the password never crosses the wire (a
# challenge-response proves it), the credentials are Secret Manager secrets fetched to tmpfs like every
# other secret here, and no certificate authority, issuance or rotation is needed; traffic stays
# unencrypted by Kafka (SASL_PLAINTEXT), within a VPC that Google encrypts between VMs. KRaft stores SCRAM
# credentials in its metadata log, which the controllers serve, so the controller listener takes PLAIN
# with the admin alone, and only the brokers' own accounts reach its port (infra/gcp/firewall.py).
ADMIN_USER = catalog.KAFKA_ADMIN_USER
PRODUCER_USER = catalog.KAFKA_PRODUCER_USER
CONSUMER_USER = catalog.KAFKA_CONSUMER_USER
# Where a broker's container keeps the admin's login files (kafka-sasl-files.sh): its own tmpfs, which the
# tools run there with `docker exec` (the boot units, scripts/kafka-broker-gcp.sh) see too.
SASL_DIR = "/dev/shm/kafka-sasl"
CONTROLLER_MECHANISM = "PLAIN"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# Kafka's ACL operations this stack grants (AclCommand's spelling).
_OPERATIONS = ("Read", "Write", "Describe")


@dataclass(frozen=True)
class TopicAccess:
    """`user` may do `operations` on `topic` (an allow ACL; nothing else is allowed to anyone but the
    admin)."""

    user: str
    operations: tuple[str, ...]
    topic: str

    def __post_init__(self) -> None:
        if not set(self.operations) <= set(_OPERATIONS) or not self.operations:
            raise ValueError(f"access of {self.user}: operations among {_OPERATIONS}, got {self.operations}")
        if self.user == ADMIN_USER:
            raise ValueError(f"{ADMIN_USER} is a super user: it needs no ACL")

    @property
    def spec(self) -> str:
        """As kafka-access.sh takes it: USER:OPERATION[+OPERATION...]:TOPIC."""
        return f"{self.user}:{'+'.join(self.operations)}:{self.topic}"


def access() -> tuple[TopicAccess, ...]:
    """The producer writes the readings topic, the consumer reads it (Describe: its offsets and partitions).
    Nobody writes the dead-letter topic (the consumer's dead letters are files, DESIGN.md), so nobody but
    the admin touches it. Spark's consumers read by assigned partitions and keep offsets in their checkpoint,
    so no consumer group is joined or committed and none is granted."""
    return (
        TopicAccess(PRODUCER_USER, ("Write", "Describe"), contract.READINGS_TOPIC),
        TopicAccess(CONSUMER_USER, ("Read", "Describe"), contract.READINGS_TOPIC),
    )


def login_users() -> tuple[str, ...]:
    """Every Kafka user with a password: the admin first, then the jobs' users (those `access` names)."""
    users = (ADMIN_USER, *dict.fromkeys(grant.user for grant in access()))
    if set(users) != set(catalog.KAFKA_USERS):
        raise ValueError(f"Kafka users {users}: access must name every one of {catalog.KAFKA_USERS}")
    return users


def sasl_env(listeners: tuple[catalog.KafkaListener, ...]) -> dict[str, str]:
    """The broker settings that authenticate every listener and authorize every request: the client
    listeners (inter-broker traffic included) with SCRAM, the controller's with PLAIN; the admin super
    user; everything else only by ACL (`access`)."""
    controllers = [listener.name for listener in listeners if listener.controller]
    return {
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": ",".join(f"{listener.name}:SASL_PLAINTEXT"
                                                         for listener in listeners),
        "KAFKA_SASL_ENABLED_MECHANISMS": SASL_MECHANISM,
        "KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL": SASL_MECHANISM,
        **{f"KAFKA_LISTENER_NAME_{name}_SASL_ENABLED_MECHANISMS": CONTROLLER_MECHANISM
           for name in controllers},
        "KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL": CONTROLLER_MECHANISM,
        "KAFKA_AUTHORIZER_CLASS_NAME": AUTHORIZER,
        "KAFKA_SUPER_USERS": f"User:{ADMIN_USER}",
        "KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND": "false",
    }


# The template scripts (infra/render/templates) the Kafka container's command runs, the entry first, and what
# kafka-setup.sh runs; each target puts a list's scripts in one folder.
START_SCRIPTS = ("kafka-start.sh", "kafka-format.sh", "kafka-sasl-files.sh")
SETUP_SCRIPTS = ("kafka-setup.sh", "kafka-topics.sh", "kafka-access.sh", "kafka-sasl-files.sh")


def kafka_start_command(node: KafkaNode) -> tuple[str, ...]:
    """The Kafka container's command on every target (a template script and its arguments): kafka-start.sh
    formats `node`'s storage for its dynamic quorum with the admin's SCRAM credential, writes the admin's
    login files to SASL_DIR and starts the broker with them."""
    return (START_SCRIPTS[0], node.initial_controllers, ADMIN_USER, catalog.SECRETS_DIR, SASL_DIR)


def kafka_setup_args(spec: KafkaSpec, bootstrap: str,
                     secrets_dir: str = catalog.SECRETS_DIR) -> tuple[str, ...]:
    """kafka-setup.sh's arguments on every target: the topics, then (after `--`) who may do what; run as
    the admin against `bootstrap`, with the users' passwords in `secrets_dir` (where the broker's container
    has them)."""
    return (bootstrap, ADMIN_USER, secrets_dir, *(topic.spec for topic in spec.topics), "--",
            *(grant.spec for grant in access()))


def metrics_agent_config() -> str:
    """The metrics agent's config text (`METRICS_AGENT_CONFIG`)."""
    return METRICS_AGENT_CONFIG.read_text()


def kafka_spec(kafka: TopicSettings, memory_mb: int) -> KafkaSpec:
    """Kafka for a broker given `memory_mb` (its VM's or its container's): the heap by sizing's one rule."""
    return KafkaSpec(service=catalog.KAFKA, heap_mb=sizing.kafka_heap_mb(memory_mb), topics=topics(kafka))
