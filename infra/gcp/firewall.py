"""VPC firewall as a table of flows: who (a network tag or a named range) may reach which tag on which ports.

Network tags are the catalog's role names. Every rule is an ingress allow with an explicit source:
GCP treats an ingress rule without source as 0.0.0.0/0, and nothing here is open to the internet.
Ports come from the service catalog and the data contract, never from literals here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
from hydrostream_jobs import contract

from infra import catalog

# Google's IAP TCP forwarders: the only source of SSH (and of IAP port forwarding).
IAP_RANGE = "35.235.240.0/20"
SSH_PORT = 22

# VMs that run catalog services (node-exporter runs on each of them).
SERVICE_VM_TAGS = catalog.ROLES
ALL_TAGS = (*catalog.ROLES, catalog.DATAPROC)

PROTOCOLS_WITH_PORTS = ("tcp", "udp")


@dataclass(frozen=True)
class SourceRange:
    """CIDRs known by a name, so a rule says who it admits (`iap-forwarders`, `grafana-viewers`)."""

    name: str
    cidrs: tuple[str, ...]


IAP_FORWARDERS = SourceRange("iap-forwarders", (IAP_RANGE,))


@dataclass(frozen=True)
class Flow:
    """One allowed flow: from source tags or a named range, to target tags, on protocols and ports.

    Empty `ports` admits every port of the protocols (only used within the Dataproc cluster).
    """

    name: str
    target_tags: tuple[str, ...]
    ports: tuple[int, ...]
    source_tags: tuple[str, ...] = ()
    source_range: SourceRange | None = None
    protocols: tuple[str, ...] = ("tcp",)

    def __post_init__(self) -> None:
        if bool(self.source_tags) == (self.source_range is not None):
            raise ValueError(f"flow {self.name}: give source tags or a source range, exactly one")
        if self.source_range is not None and not self.source_range.cidrs:
            raise ValueError(f"flow {self.name}: source range {self.source_range.name} holds no CIDR")
        if not self.target_tags:
            raise ValueError(f"flow {self.name}: no target tag")
        if self.ports and not set(self.protocols) <= set(PROTOCOLS_WITH_PORTS):
            raise ValueError(f"flow {self.name}: ports apply only to {', '.join(PROTOCOLS_WITH_PORTS)}")


def flows(brokers: int, grafana_source_ranges: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """The environment's allowed flows; the brokers' flow exists only with several brokers, Grafana's
    direct flow only when CIDRs are configured."""
    kafka_port = catalog.KAFKA.port("kafka")
    table = [
        Flow("kafka-from-dataproc", target_tags=(catalog.BROKER,), ports=(kafka_port,),
             source_tags=(catalog.DATAPROC,)),
        Flow("influxdb-from-clients", target_tags=(catalog.TSDB,), ports=(catalog.INFLUXDB.port("http"),),
             source_tags=(catalog.DATAPROC, catalog.MONITORING)),
        Flow("job-metrics-from-monitoring", target_tags=(catalog.DATAPROC,),
             ports=(contract.PRODUCER_METRICS_PORT, contract.CONSUMER_METRICS_PORT),
             source_tags=(catalog.MONITORING,)),
        Flow("kafka-exporter-from-monitoring", target_tags=(catalog.BROKER,),
             ports=(catalog.KAFKA_EXPORTER.port("metrics"),), source_tags=(catalog.MONITORING,)),
        Flow("node-exporter-from-monitoring", target_tags=SERVICE_VM_TAGS,
             ports=(catalog.NODE_EXPORTER.port("metrics"),), source_tags=(catalog.MONITORING,)),
        # Dataproc requires its nodes to reach each other on every port (YARN, HDFS, Spark shuffle).
        Flow("dataproc-internal", target_tags=(catalog.DATAPROC,), ports=(),
             source_tags=(catalog.DATAPROC,), protocols=("tcp", "udp", "icmp")),
        Flow("ssh-from-iap", target_tags=ALL_TAGS, ports=(SSH_PORT,), source_range=IAP_FORWARDERS),
    ]
    if brokers > 1:
        # Replication and client redirects (9092) and the KRaft quorum (9093) between the brokers.
        table.append(Flow("kafka-between-brokers", target_tags=(catalog.BROKER,),
                          ports=(kafka_port, catalog.KAFKA.port("controller")),
                          source_tags=(catalog.BROKER,)))
    if grafana_source_ranges:
        viewers = SourceRange("grafana-viewers", tuple(grafana_source_ranges))
        table.append(Flow("grafana-from-viewers", target_tags=(catalog.MONITORING,),
                          ports=(catalog.GRAFANA.port("http"),), source_range=viewers))
    return tuple(table)


def allows(flow: Flow) -> list[gcp.compute.FirewallAllowArgs]:
    """The flow's protocols and ports as the provider's allow blocks."""
    ports = [str(port) for port in flow.ports] or None
    return [gcp.compute.FirewallAllowArgs(protocol=protocol, ports=ports) for protocol in flow.protocols]


@dataclass(frozen=True)
class FirewallRulesArgs:
    network: pulumi.Input[str]
    flows: tuple[Flow, ...]       # `flows(...)` for the stack


class FirewallRules(pulumi.ComponentResource):
    """One ingress allow rule per flow; exposes the rules' names."""

    def __init__(self, name: str, args: FirewallRulesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:network:FirewallRules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule_names: dict[str, pulumi.Output[str]] = {}
        for flow in args.flows:
            source = (f"range {flow.source_range.name}" if flow.source_range
                      else "tags " + ", ".join(flow.source_tags))
            rule = gcp.compute.Firewall(
                f"{name}-{flow.name}",
                name=f"hydrostream-allow-{flow.name}",
                network=args.network,
                direction="INGRESS",
                description=f"{flow.name}: {source} -> tags {', '.join(flow.target_tags)}",
                allows=allows(flow),
                source_tags=list(flow.source_tags) or None,
                source_ranges=list(flow.source_range.cidrs) if flow.source_range else None,
                target_tags=list(flow.target_tags),
                opts=child,
            )
            self.rule_names[flow.name] = rule.name
        self.register_outputs({"rule_names": self.rule_names})
