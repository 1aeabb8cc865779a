"""VPC firewall as tables of flows: who (a role or a named range) may reach which roles on which ports,
and where each role may send traffic out.

Flows name the catalog's roles; each rule selects a role's instances by the role's service account
(`target_service_accounts`, `source_service_accounts`), never by network tag: anyone allowed to set an
instance's tags could move it into a rule, while changing its service account takes stopping it and the
right to act as the new account. GCP refuses tags and service accounts in one rule, so no rule names a
tag. Every ingress rule is an allow with an explicit source: GCP treats an ingress rule without source as
0.0.0.0/0, and nothing here is open to the internet. Ports come from the service catalog and the data
contract, never from literals here.

Egress is closed by default: one deny-all rule at EGRESS_DENY_PRIORITY (below every allow, above
GCP's implied allow-all at 65535) and an allow per `EgressFlow` for what a role needs: the subnet
(the ingress rules decide who receives), Google APIs through private.googleapis.com only, and the
public hosts the catalog names (image registries, alert relays), on their ports. VPC firewall
rules match addresses, not names: Docker Hub and the relays publish no stable ranges, so those
flows admit their port to any address; `reaches` names who they are for. Traffic to the metadata
server (169.254.169.254: tokens, DNS, NTP) is always allowed by GCP and needs no rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp
from hydrostream_jobs import contract

from infra import catalog
from infra.render.alertmanager_config import Receivers

# Google's IAP TCP forwarders: the only source of SSH (and of IAP port forwarding).
IAP_RANGE = "35.235.240.0/20"
SSH_PORT = 22

# VMs that run catalog services (node-exporter runs on each of them).
SERVICE_VM_ROLES = catalog.ROLES
ALL_ROLES = (*catalog.ROLES, catalog.DATAPROC)
# A rule names at most 10 source and 10 target service accounts (terraform-provider-google@07fc865
# google/services/compute/resource_compute_firewall.go: MaxItems of both).
MAX_SERVICE_ACCOUNTS = 10

PROTOCOLS_WITH_PORTS = ("tcp", "udp")


@dataclass(frozen=True)
class SourceRange:
    """CIDRs known by a name, so a rule says who it admits (`iap-forwarders`, `grafana-viewers`)."""

    name: str
    cidrs: tuple[str, ...]


IAP_FORWARDERS = SourceRange("iap-forwarders", (IAP_RANGE,))
INTERNET = SourceRange("internet", ("0.0.0.0/0",))
GOOGLE_APIS = SourceRange(catalog.PRIVATE_GOOGLE_APIS_HOST, (catalog.PRIVATE_GOOGLE_APIS_RANGE,))
# Below every allow (default priority 1000), above GCP's implied allow-all egress (65535).
EGRESS_DENY_PRIORITY = 65534
# Firewall rule logging has no sampling (VPC flow logs do, infra/gcp/network.py): it is on only where
# connections are rare and each one matters, SSH from IAP in and everything the egress deny refuses.
FIREWALL_LOG = gcp.compute.FirewallLogConfigArgs(metadata="INCLUDE_ALL_METADATA")


@dataclass(frozen=True)
class Flow:
    """One allowed flow: from source roles or a named range, to target roles, on protocols and ports.

    Empty `ports` admits every port of the protocols (only used within the Dataproc cluster).
    """

    name: str
    target_roles: tuple[str, ...]
    ports: tuple[int, ...]
    source_roles: tuple[str, ...] = ()
    source_range: SourceRange | None = None
    protocols: tuple[str, ...] = ("tcp",)
    logged: bool = False          # firewall rule logging: each connection the rule admits

    def __post_init__(self) -> None:
        if bool(self.source_roles) == (self.source_range is not None):
            raise ValueError(f"flow {self.name}: give source roles or a source range, exactly one")
        if self.source_range is not None and not self.source_range.cidrs:
            raise ValueError(f"flow {self.name}: source range {self.source_range.name} holds no CIDR")
        if not self.target_roles:
            raise ValueError(f"flow {self.name}: no target role")
        if self.ports and not set(self.protocols) <= set(PROTOCOLS_WITH_PORTS):
            raise ValueError(f"flow {self.name}: ports apply only to {', '.join(PROTOCOLS_WITH_PORTS)}")


def flows(brokers: int, grafana_source_ranges: tuple[str, ...] = ()) -> tuple[Flow, ...]:
    """The environment's allowed flows; the brokers' flow exists only with several brokers, Grafana's
    direct flow only when CIDRs are configured."""
    kafka_port = catalog.KAFKA.port("kafka")
    table = [
        Flow("kafka-from-dataproc", target_roles=(catalog.BROKER,), ports=(kafka_port,),
             source_roles=(catalog.DATAPROC,)),
        # The consumer writes; from the monitoring VM Grafana queries and Prometheus scrapes /metrics on
        # the same port. Alertmanager and Grafana are scraped on the monitoring VM's loopback: no rule.
        Flow("influxdb-from-clients", target_roles=(catalog.TSDB,), ports=(catalog.INFLUXDB.port("http"),),
             source_roles=(catalog.DATAPROC, catalog.MONITORING)),
        Flow("job-metrics-from-monitoring", target_roles=(catalog.DATAPROC,),
             ports=(contract.PRODUCER_METRICS_PORT, contract.CONSUMER_METRICS_PORT),
             source_roles=(catalog.MONITORING,)),
        # Each broker's own metrics (the JMX exporter agent in its JVM).
        Flow("kafka-metrics-from-monitoring", target_roles=(catalog.BROKER,),
             ports=(catalog.KAFKA.port("metrics"),), source_roles=(catalog.MONITORING,)),
        Flow("node-exporter-from-monitoring", target_roles=SERVICE_VM_ROLES,
             ports=(catalog.NODE_EXPORTER.port("metrics"),), source_roles=(catalog.MONITORING,)),
        # Dataproc requires its nodes to reach each other on every port (YARN, HDFS, Spark shuffle).
        Flow("dataproc-internal", target_roles=(catalog.DATAPROC,), ports=(),
             source_roles=(catalog.DATAPROC,), protocols=("tcp", "udp", "icmp")),
        # Logged: who opened a shell or a tunnel, and when (rare connections, so cheap).
        Flow("ssh-from-iap", target_roles=ALL_ROLES, ports=(SSH_PORT,), source_range=IAP_FORWARDERS,
             logged=True),
    ]
    if brokers > 1:
        # Replication and client redirects (9092) and the KRaft quorum (9093) between the brokers.
        table.append(Flow("kafka-between-brokers", target_roles=(catalog.BROKER,),
                          ports=(kafka_port, catalog.KAFKA.port("controller")),
                          source_roles=(catalog.BROKER,)))
    if grafana_source_ranges:
        viewers = SourceRange("grafana-viewers", tuple(grafana_source_ranges))
        table.append(Flow("grafana-from-viewers", target_roles=(catalog.MONITORING,),
                          ports=(catalog.GRAFANA.port("http"),), source_range=viewers))
    return tuple(table)


@dataclass(frozen=True)
class EgressFlow:
    """Where the instances of `source_roles` may send: a named range, on protocols and ports (none: every
    port), for the hosts `reaches` names."""

    name: str
    source_roles: tuple[str, ...]
    destination: SourceRange
    ports: tuple[int, ...]
    reaches: tuple[str, ...]
    protocols: tuple[str, ...] = ("tcp",)

    def __post_init__(self) -> None:
        if not self.source_roles:
            raise ValueError(f"egress flow {self.name}: no source role (it would apply to every instance)")
        if not self.destination.cidrs:
            raise ValueError(f"egress flow {self.name}: destination {self.destination.name} holds no CIDR")
        if self.destination == INTERNET and not self.ports:
            raise ValueError(f"egress flow {self.name}: to the internet only on named ports")
        if self.ports and not set(self.protocols) <= set(PROTOCOLS_WITH_PORTS):
            raise ValueError(f"egress flow {self.name}: ports apply only to "
                             f"{', '.join(PROTOCOLS_WITH_PORTS)}")


def smarthost_port(smarthost: str) -> int:
    """The port of an SMTP relay `host:port`."""
    return int(smarthost.rsplit(":", 1)[1])


def egress_flows(subnet_cidr: str, alerting: Receivers) -> tuple[EgressFlow, ...]:
    """Everything the environment may send outside its instances; the relays' flows only for the
    receivers `alerting` configures."""
    https = (catalog.HTTPS_PORT,)
    table = [
        # Kafka, InfluxDB, scrapes, the Dataproc cluster: the ingress rules say who may receive what.
        EgressFlow("internal", ALL_ROLES, SourceRange("subnet", (subnet_cidr,)), (), ("the subnet",),
                   protocols=("tcp", "udp", "icmp")),
        EgressFlow("google-apis", ALL_ROLES, GOOGLE_APIS, https, ("*.googleapis.com",)),
        *(EgressFlow(f"registries-{role}", (role,), INTERNET, https, catalog.image_registries(role))
          for role in SERVICE_VM_ROLES),
    ]
    if alerting.pagerduty:
        table.append(EgressFlow("pagerduty", (catalog.MONITORING,), INTERNET, https,
                                catalog.PAGERDUTY_EVENTS))
    if alerting.webhook:
        table.append(EgressFlow("webhook", (catalog.MONITORING,), INTERNET, https,
                                ("the webhook (secret hydrostream:webhook_url), https on 443",)))
    if alerting.smarthost is not None:
        table.append(EgressFlow("smtp-relay", (catalog.MONITORING,), INTERNET,
                                (smarthost_port(alerting.smarthost),), (alerting.smarthost,)))
    return tuple(table)


def allows(flow: Flow | EgressFlow) -> list[gcp.compute.FirewallAllowArgs]:
    """The flow's protocols and ports as the provider's allow blocks."""
    ports = [str(port) for port in flow.ports] or None
    return [gcp.compute.FirewallAllowArgs(protocol=protocol, ports=ports) for protocol in flow.protocols]


def service_accounts(emails: Mapping[str, pulumi.Input[str]], roles: Sequence[str],
                     flow: str) -> list[pulumi.Input[str]]:
    """The service account e-mails of `roles`, for the rule of `flow`; a role without one is refused."""
    missing = [role for role in roles if role not in emails]
    if missing:
        raise ValueError(f"flow {flow}: no service account for role {', '.join(missing)} "
                         f"(accounts of: {', '.join(emails)})")
    if len(roles) > MAX_SERVICE_ACCOUNTS:
        raise ValueError(f"flow {flow}: {len(roles)} roles, a rule takes at most {MAX_SERVICE_ACCOUNTS} "
                         f"service accounts")
    return [emails[role] for role in roles]


def accounts_of(roles: Sequence[str]) -> str:
    """How a rule's description names the instances it selects."""
    return f"service accounts of roles {', '.join(roles)}"


@dataclass(frozen=True)
class FirewallRulesArgs:
    network: pulumi.Input[str]
    flows: tuple[Flow, ...]                              # `flows(...)` for the stack
    service_accounts: Mapping[str, pulumi.Input[str]]    # role name -> its service account's e-mail


class FirewallRules(pulumi.ComponentResource):
    """One ingress allow rule per flow; exposes the rules' names."""

    def __init__(self, name: str, args: FirewallRulesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:network:FirewallRules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule_names: dict[str, pulumi.Output[str]] = {}
        for flow in args.flows:
            source = (f"range {flow.source_range.name}" if flow.source_range
                      else accounts_of(flow.source_roles))
            rule = gcp.compute.Firewall(
                f"{name}-{flow.name}",
                name=f"hydrostream-allow-{flow.name}",
                network=args.network,
                direction="INGRESS",
                description=f"{flow.name}: {source} -> {accounts_of(flow.target_roles)}",
                allows=allows(flow),
                source_service_accounts=(service_accounts(args.service_accounts, flow.source_roles, flow.name)
                                         or None),
                source_ranges=list(flow.source_range.cidrs) if flow.source_range else None,
                target_service_accounts=service_accounts(args.service_accounts, flow.target_roles, flow.name),
                log_config=FIREWALL_LOG if flow.logged else None,
                opts=child,
            )
            self.rule_names[flow.name] = rule.name
        self.register_outputs({"rule_names": self.rule_names})


@dataclass(frozen=True)
class EgressRulesArgs:
    network: pulumi.Input[str]
    flows: tuple[EgressFlow, ...]                        # `egress_flows(...)` for the stack
    service_accounts: Mapping[str, pulumi.Input[str]]    # role name -> its service account's e-mail
    # What must exist before egress closes (the private DNS zone for googleapis.com): a VM booting
    # between the deny and these would lose the Google APIs.
    after: tuple[pulumi.Resource, ...] = ()


class EgressRules(pulumi.ComponentResource):
    """An egress allow rule per flow and one deny-all below them, created last; exposes the names."""

    def __init__(self, name: str, args: EgressRulesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:network:EgressRules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule_names: dict[str, pulumi.Output[str]] = {}
        rules = []
        for flow in args.flows:
            # An egress rule takes no source_*: the sending instances are its targets.
            rule = gcp.compute.Firewall(
                f"{name}-{flow.name}",
                name=f"hydrostream-egress-{flow.name}",
                network=args.network,
                direction="EGRESS",
                description=(f"{flow.name}: {accounts_of(flow.source_roles)} -> {flow.destination.name} "
                             f"({', '.join(flow.reaches)})")[:2048],
                allows=allows(flow),
                destination_ranges=list(flow.destination.cidrs),
                target_service_accounts=service_accounts(args.service_accounts, flow.source_roles, flow.name),
                opts=child,
            )
            rules.append(rule)
            self.rule_names[flow.name] = rule.name
        deny = gcp.compute.Firewall(
            f"{name}-deny-all",
            name="hydrostream-egress-deny-all",
            network=args.network,
            direction="EGRESS",
            description="deny-all: every egress the allow rules (priority 1000) do not admit",
            priority=EGRESS_DENY_PRIORITY,
            denies=[gcp.compute.FirewallDenyArgs(protocol="all")],
            destination_ranges=list(INTERNET.cidrs),
            log_config=FIREWALL_LOG,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*rules, *args.after]),
        )
        self.rule_names["deny-all"] = deny.name
        self.register_outputs({"rule_names": self.rule_names})

