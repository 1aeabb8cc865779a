"""The Kafka cluster: one KRaft node, or three in three zones of the region, each log on its own data disk.

With `kafka.brokers: 3` every node is a broker and a controller (combined mode), one per zone: three VMs
already give a controller quorum that survives the loss of one node (two of three voters are a
majority), so dedicated controllers would add machines without adding a loss the cluster survives. Each
node's internal address is reserved before any VM exists, so every node's cloud-config names the whole
quorum (`KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS` and the initial voters) by static IP and a replaced
VM keeps its address. `broker.rack` is the zone: Kafka places a partition's three replicas in three
zones. Every topic (the readings and dead-letter topics, the offsets and transaction logs) has a replica
on each broker and `min.insync.replicas` below that (settings: 2 of 3), so with producers on `acks=all`
(jobs/hydrostream_jobs/kafka.py) a write is on two zones before it is acknowledged, one broker may be
down, and with two down producers fail instead of losing data.

One cluster id (`catalog.KAFKA_CLUSTER_ID`) for every node. The quorum is dynamic (KIP-853): every node
is first formatted with the same --initial-controllers (`KafkaNode.initial_controllers`), finds the
controllers through `controller.quorum.bootstrap.servers`, and a node whose log was lost is removed and
added again under a new directory id (scripts/replace-broker.sh). Going from one broker to three is
still a new cluster (new VMs and disks; prod retains the old disk): the single node's voter is
`localhost`, which the others cannot reach.

Each broker's Kafka loads the Prometheus JMX exporter agent (its own metrics, scraped by Prometheus on
`catalog.KAFKA_METRICS_PORT`): the jar the agent lock pins is uploaded here to the `broker-agents` bucket
under its sha256, which only the broker account reads, and each VM checks that sha256 before use
(infra/render/cloud_init.py); nothing is fetched from Maven Central at boot.

`python -m infra.tools.replace_target STACK` prints what scripts/kafka-broker-gcp.sh needs to reach a
stack's brokers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.gcp.options import child_options
from infra.gcp.service_vm import ServiceVm, ServiceVmArgs, VmHost, VmSite, instance_name, secret_refs
from infra.release import connector_jars
from infra.release.connector_jars import Jar
from infra.render import cloud_init
from infra.render.vm_inputs import AgentJar
from infra.services.kafka import KafkaSpec, cluster_nodes

# Re-exported: tests/kafka take the stack's topics from here.
from infra.services.kafka import topics as topics


def broker_names(stack: str, brokers: int) -> tuple[str, ...]:
    """Each broker's VM name: the role's name for a single broker, numbered by node id for more."""
    base = instance_name(stack, catalog.BROKER)
    if brokers == 1:
        return (base,)
    return tuple(f"{base}-{node_id}" for node_id in range(1, brokers + 1))


def agent_object_name(jar: Jar) -> str:
    """`agents/<sha256>/<file>`: the agent jar's object, named by its content."""
    return f"agents/{jar.sha256}/{jar.file_name}"


def bootstrap_servers(ips: list[str] | tuple[str, ...]) -> str:
    """Every broker's client listener, comma-separated: clients reach the cluster while one is down."""
    port = catalog.KAFKA.port("kafka")
    return ",".join(f"{ip}:{port}" for ip in ips)


@dataclass(frozen=True)
class KafkaBrokerArgs:
    spec: KafkaSpec                          # heap, topics, listeners (infra.services.kafka)
    hosts: tuple[VmHost, ...]                # node 1 first; named by `broker_names`, one zone each
    min_insync_replicas: int
    site: VmSite
    agent_bucket: pulumi.Input[str]          # the bucket only the broker account reads
    agent_jar: Jar                           # the metrics agent, from infra/release/broker-agent.lock
    # logical secret -> projects/P/secrets/S: the Kafka users' passwords (names, never values)
    secret_ids: Mapping[str, pulumi.Input[str]]

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("a Kafka cluster needs at least one broker VM")


class KafkaBroker(pulumi.ComponentResource):
    """The broker VMs; exposes `bootstrap_servers` ("<ip>:9092,..."), `internal_ips` and `instances`
    (VM name -> zone)."""

    def __init__(self, name: str, args: KafkaBrokerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:messaging:KafkaBroker", name, None, opts)
        names = tuple(host.instance for host in args.hosts)
        zones = tuple(host.zone for host in args.hosts)
        single = len(names) == 1

        # More than one node: the addresses first, so each cloud-config can name all voters.
        addresses = None if single else [gcp.compute.Address(
            f"{name}-{node_id}-ip",
            name=f"{vm_name}-ip",
            region=args.site.region,
            address_type="INTERNAL",
            subnetwork=args.site.subnet,
            labels={**args.site.labels, "role": catalog.BROKER},
            opts=pulumi.ResourceOptions(parent=self),
        ).address for node_id, vm_name in enumerate(names, start=1)]
        ips = (pulumi.Output.all(*addresses) if addresses
               else pulumi.Output.from_input(["localhost"]))
        cluster = ips.apply(lambda values: cluster_nodes(zones, tuple(values), args.min_insync_replicas))

        jar = args.agent_jar
        uploaded = gcp.storage.BucketObject(
            f"{name}-metrics-agent",
            bucket=args.agent_bucket,
            name=agent_object_name(jar),
            source=pulumi.FileAsset(str(connector_jars.cached(jar))),
            content_type="application/java-archive",
            opts=pulumi.ResourceOptions(parent=self),
        )
        agent = pulumi.Output.all(uploaded.bucket, uploaded.output_name).apply(
            lambda parts: AgentJar(f"gs://{parts[0]}/{parts[1]}", jar.sha256))

        refs = secret_refs(catalog.BROKER, args.secret_ids)
        vms = []
        for index, host in enumerate(args.hosts):
            user_data = pulumi.Output.all(cluster, agent, refs).apply(
                lambda values, i=index: cloud_init.broker_cloud_init(args.spec, values[0][i], values[2],
                                                                     agent=values[1]))
            vms.append(ServiceVm(name if single else f"{name}-{index + 1}", ServiceVmArgs(
                role=catalog.BROKER, host=host, site=args.site, user_data=user_data,
                address=None if single else addresses[index],
            ), child_options(self, opts)))

        self.internal_ips: pulumi.Output[list[str]] = pulumi.Output.all(*(vm.internal_ip for vm in vms))
        self.bootstrap_servers: pulumi.Output[str] = self.internal_ips.apply(bootstrap_servers)
        self.instances: dict[str, str] = dict(zip(names, zones, strict=True))
        self.register_outputs({"bootstrap_servers": self.bootstrap_servers, "internal_ips": self.internal_ips,
                               "instances": self.instances})

