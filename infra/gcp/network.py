"""The environment's private network: a custom VPC, one subnet, and Cloud NAT for outbound traffic.

No VM or Dataproc node has a public IP. Private Google Access lets them reach Google APIs
(Cloud Storage, Secret Manager, Dataproc) directly; Cloud NAT lets them pull container images and
packages (Docker Hub, Maven Central, PyPI) without being reachable from the internet.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.options import child_options

NETWORK_NAME = "hydrostream"


@dataclass(frozen=True)
class NetworkArgs:
    stack: str
    region: str
    subnet_cidr: str


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
            **regional,
        )
        router = gcp.compute.Router(f"{name}-router", network=vpc.id, **regional)
        nat = gcp.compute.RouterNat(
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

        self.network_id = vpc.id
        self.subnet_self_link = subnet.self_link
        # What needs the internet at boot (Dataproc's pip.packages, image pulls) waits for this.
        self.nat = nat
        self.register_outputs({
            "network_id": self.network_id,
            "subnet_self_link": self.subnet_self_link,
        })
