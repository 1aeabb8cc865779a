"""The environment's private network: a custom VPC, one subnet, Cloud NAT for outbound traffic, and the
private DNS zone that sends Google API names to Private Google Access.

No VM or Dataproc node has a public IP. Private Google Access lets them reach Google APIs
(Cloud Storage, Secret Manager, IAM Credentials, Logging, Monitoring, Dataproc) without NAT. Egress
is closed by default (infra/gcp/firewall.py) and allowed to Google APIs only at private.googleapis.com
(catalog.PRIVATE_GOOGLE_APIS_RANGE), so a private Cloud DNS zone for `googleapis.com.` answers every
`*.googleapis.com` name with private.googleapis.com's four addresses: without it the default names
resolve to public addresses the egress rules refuse. Cloud NAT lets the service VMs pull container
images (Docker Hub) and the monitoring VM reach its alert relays, without being reachable from the
internet. NAT covers the subnet, which every role is on; the egress rules, not NAT, decide which role
may leave on which port, and the Dataproc nodes may not leave at all (the jobs' jars and Python wheels
ship with the release: infra/gcp/jobs.py).

The subnet keeps VPC flow logs, sampled (FLOW_LOG_SAMPLING of the flows, aggregated per
FLOW_LOG_INTERVAL): who talked to whom, for an audit after the fact; infra/cost.py estimates their cost.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.gcp.options import child_options

NETWORK_NAME = "hydrostream"
FLOW_LOG_SAMPLING = 0.5
FLOW_LOG_INTERVAL = "INTERVAL_1_MIN"
DNS_TTL_S = 300


def private_google_api_addresses() -> list[str]:
    """private.googleapis.com's addresses: every address of its /30."""
    return [str(address) for address in ipaddress.ip_network(catalog.PRIVATE_GOOGLE_APIS_RANGE)]


@dataclass(frozen=True)
class NetworkArgs:
    stack: str
    region: str
    subnet_cidr: str
    labels: Mapping[str, str] = field(default_factory=dict)   # on the DNS zone (the one labelable child)


class Network(pulumi.ComponentResource):
    """Custom VPC with one regional subnet (Private Google Access) behind a Cloud Router and NAT."""

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:network:Network", name, None, opts)
        child = child_options(self, opts)
        region = args.region

        vpc = gcp.compute.Network(
            f"{name}-vpc",
            name=NETWORK_NAME,
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description=f"Hydrostream {args.stack}: private network for the pipeline",
            opts=child,
        )
        # The subnet, its router and NAT: one each in the stack's region, named after it.
        regional = {"name": f"{NETWORK_NAME}-{region}", "region": region, "opts": child}
        subnet = gcp.compute.Subnetwork(
            f"{name}-subnet",
            network=vpc.id,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            log_config=gcp.compute.SubnetworkLogConfigArgs(
                aggregation_interval=FLOW_LOG_INTERVAL,
                flow_sampling=FLOW_LOG_SAMPLING,
                metadata="INCLUDE_ALL_METADATA",
            ),
            **regional,
        )
        router = gcp.compute.Router(f"{name}-router", network=vpc.id, **regional)
        gcp.compute.RouterNat(
            f"{name}-nat",
            router=router.name,
            nat_ip_allocate_option="AUTO_ONLY",
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[gcp.compute.RouterNatSubnetworkArgs(
                name=subnet.id,
                source_ip_ranges_to_nats=["ALL_IP_RANGES"],
            )],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            **regional,
        )

        zone = gcp.dns.ManagedZone(
            f"{name}-googleapis",
            name="hydrostream-googleapis",
            dns_name="googleapis.com.",
            description=f"Hydrostream {args.stack}: Google APIs through {catalog.PRIVATE_GOOGLE_APIS_HOST}",
            visibility="private",
            private_visibility_config=gcp.dns.ManagedZonePrivateVisibilityConfigArgs(
                networks=[gcp.dns.ManagedZonePrivateVisibilityConfigNetworkArgs(network_url=vpc.id)]),
            labels=dict(args.labels),
            opts=child,
        )
        private_host = f"{catalog.PRIVATE_GOOGLE_APIS_HOST}."
        self.private_apis_records = (
            gcp.dns.RecordSet(f"{name}-googleapis-private", managed_zone=zone.name, name=private_host,
                              type="A", ttl=DNS_TTL_S, rrdatas=private_google_api_addresses(), opts=child),
            gcp.dns.RecordSet(f"{name}-googleapis-wildcard", managed_zone=zone.name, name="*.googleapis.com.",
                              type="CNAME", ttl=DNS_TTL_S, rrdatas=[private_host], opts=child),
        )

        self.network_id = vpc.id
        self.subnet_self_link = subnet.self_link
        self.register_outputs({
            "network_id": self.network_id,
            "subnet_self_link": self.subnet_self_link,
        })
