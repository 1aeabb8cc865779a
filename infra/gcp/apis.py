"""The Google Cloud APIs the environment uses, enabled before anything that needs them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

# compute: VPC, VMs, disks; dataproc: the cluster and jobs; secretmanager: generated credentials;
# iam: service accounts; storage: buckets; iap: SSH and port forwarding without public IPs;
# logging/monitoring: the agents' writer roles; cloudresourcemanager: project-level IAM.
SERVICES = (
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    # The private zone that sends *.googleapis.com to private.googleapis.com (infra/gcp/network.py).
    "dns.googleapis.com",
    "iam.googleapis.com",
    # The InfluxDB VM mints the backup account's tokens (infra/gcp/identity.py).
    "iamcredentials.googleapis.com",
    "iap.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)


@dataclass(frozen=True)
class ProjectApisArgs:
    project: str


class ProjectApis(pulumi.ComponentResource):
    """Enables each API once; destroying the stack leaves them on (other workloads may use them)."""

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:project:ProjectApis", name, None, opts)
        self.services = [
            gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for service in SERVICES
        ]
        self.register_outputs({})
