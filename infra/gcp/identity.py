"""Service accounts: one per role, each with the few project roles it needs.

VMs and Dataproc nodes run as these accounts, never as the default compute service account (which
holds Editor on the project). Access to buckets and secrets is granted on each bucket and secret
(`storage.py`, `secrets.py`), not here.

The InfluxDB backups upload as their own account, `BACKUP`, which holds no project role and may only
create objects in the backup bucket (granted there). A VM's metadata server only hands out the VM's own
account, so the InfluxDB VM borrows the backup account for each upload: its account holds
`roles/iam.serviceAccountTokenCreator` on the backup account alone (not on the project) and mints a
short-lived token of it. Storage rights stay off the VM's account, and the bucket's audit logs name the
backup account.
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

# Not a catalog role (no VM runs as it): the identity the InfluxDB backups are uploaded with.
BACKUP = "tsdb-backup"
# Account -> the catalog role whose account may mint its tokens.
IMPERSONATORS: dict[str, str] = {BACKUP: catalog.TSDB}
TOKEN_CREATOR = "roles/iam.serviceAccountTokenCreator"

DESCRIPTIONS = {
    catalog.DATAPROC: "Dataproc cluster nodes running the Spark jobs",
    catalog.BROKER: "Kafka broker VM",
    catalog.TSDB: "InfluxDB VM",
    catalog.MONITORING: "Prometheus and Grafana VM",
    BACKUP: "InfluxDB backup uploads (object create on the backup bucket only)",
}
ACCOUNTS = (*PROJECT_ROLES, BACKUP)


def account_id(role: str) -> str:
    """The service account id of a role (6-30 characters)."""
    return f"hydro-{role}"


def project_roles(role: str) -> tuple[str, ...]:
    """Every project role the role's service account holds (a borrowed account: none)."""
    if role in IMPERSONATORS:
        return ()
    return (*BASE_ROLES, *PROJECT_ROLES[role])


@dataclass(frozen=True)
class ServiceAccountsArgs:
    settings: StackSettings


class ServiceAccounts(pulumi.ComponentResource):
    """A service account per role with its project roles, and the backup account; exposes `emails` by
    role (and `BACKUP`)."""

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:identity:ServiceAccounts", name, None, opts)
        project = args.settings.gcp.project
        # Children wait for what the component waits for (the project's APIs).
        child = pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None)
        self.emails: dict[str, pulumi.Output[str]] = {}
        accounts: dict[str, gcp.serviceaccount.Account] = {}
        for role in ACCOUNTS:
            account = gcp.serviceaccount.Account(
                f"{name}-{role}",
                account_id=account_id(role),
                display_name=f"Hydrostream {role}",
                description=DESCRIPTIONS[role],
                project=project,
                opts=child,
            )
            accounts[role] = account
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
        for borrowed, role in IMPERSONATORS.items():
            grant = gcp.serviceaccount.IAMMember(
                f"{name}-{borrowed}-{TOKEN_CREATOR.rsplit('.', 1)[-1]}-{role}",
                service_account_id=accounts[borrowed].name,
                role=TOKEN_CREATOR,
                member=accounts[role].member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The borrowed account is usable once its borrower may mint its tokens.
            self.emails[borrowed] = pulumi.Output.all(self.emails[borrowed], grant.id).apply(
                lambda parts: parts[0])
        self.register_outputs({"emails": self.emails})
