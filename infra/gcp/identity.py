"""Service accounts: one per role, each with the few project roles it needs.

VMs and Dataproc nodes run as these accounts, never as the default compute service account (which
holds Editor on the project). Access to buckets and secrets is granted on each bucket and secret
(`storage.py`, `secrets.py`), not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.settings import StackSettings

# Every workload writes its logs and host metrics to Cloud Logging and Cloud Monitoring.
BASE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")

# Project-level roles per service account, beyond BASE_ROLES.
PROJECT_ROLES: dict[str, tuple[str, ...]] = {
    # Dataproc requires it on the cluster's VM service account (agent heartbeats, job state).
    catalog.DATAPROC: ("roles/dataproc.worker",),
    catalog.BROKER: (),
    catalog.TSDB: (),
    catalog.MONITORING: (),
}

DESCRIPTIONS = {
    catalog.DATAPROC: "Dataproc cluster nodes running the Spark jobs",
    catalog.BROKER: "Kafka broker VM",
    catalog.TSDB: "InfluxDB VM",
    catalog.MONITORING: "Prometheus and Grafana VM",
}


def account_id(role: str) -> str:
    """The service account id of a role (6-30 characters)."""
    return f"hydro-{role}"


def project_roles(role: str) -> tuple[str, ...]:
    """Every project role the role's service account holds."""
    return (*BASE_ROLES, *PROJECT_ROLES[role])


@dataclass(frozen=True)
class ServiceAccountsArgs:
    settings: StackSettings


class ServiceAccounts(pulumi.ComponentResource):
    """A service account per role with its project roles; exposes `emails` by role."""

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:identity:ServiceAccounts", name, None, opts)
        project = args.settings.gcp.project
        # Children wait for what the component waits for (the project's APIs).
        child = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        self.emails: dict[str, pulumi.Output[str]] = {}
        for role in PROJECT_ROLES:
            account = gcp.serviceaccount.Account(
                f"{name}-{role}",
                account_id=account_id(role),
                display_name=f"Hydrostream {role}",
                description=DESCRIPTIONS[role],
                project=project,
                opts=child,
            )
            grants = [
                gcp.projects.IAMMember(
                    f"{name}-{role}-{project_role.removeprefix('roles/')}",
                    project=project,
                    role=project_role,
                    member=account.member,
                    opts=child,
                )
                for project_role in project_roles(role)
            ]
            # Resolves once the account holds its roles: Dataproc refuses a VM account without its role.
            self.emails[role] = pulumi.Output.all(
                account.email, *(grant.id for grant in grants)).apply(lambda parts: parts[0])
        self.register_outputs({"emails": self.emails})
