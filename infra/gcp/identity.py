"""Service accounts: one per role (infra/roles.py), each with the few project roles it needs.

VMs and Dataproc nodes run as these accounts, never as the default compute service account (which
holds Editor on the project). Access to buckets and secrets is granted on each bucket and secret
(`storage.py`, `secrets.py`), not here. The custom roles of `roles.custom_roles` are declared here,
before the grants that name them.

The InfluxDB backups upload as their own account, `roles.TSDB_BACKUP`, which holds no project role and
may only create objects in the backup bucket (granted there). A VM's metadata server only hands out
the VM's own account, so the InfluxDB VM borrows the backup account for each upload: its account holds
`roles.ACCESS_TOKEN_MINTER` (iam.serviceAccounts.getAccessToken alone) on the backup account alone (not
on the project) and mints a short-lived token of it. Storage rights stay off the VM's account, and the
bucket's Data Access audit logs name the backup account.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.options import child_options, once
from infra.roles import ACCESS_TOKEN_MINTER, Role, custom_roles


@dataclass(frozen=True)
class ServiceAccountsArgs:
    project: str
    accounts: tuple[Role, ...]    # infra.roles.ACCOUNTS: each role's account and its project roles


class ServiceAccounts(pulumi.ComponentResource):
    """A service account per role with its project roles, borrowed accounts with their one borrower;
    exposes `emails` by role name."""

    def __init__(self, name: str, args: ServiceAccountsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:identity:ServiceAccounts", name, None, opts)
        project = args.project
        child = child_options(self, opts)
        self.emails: dict[str, pulumi.Output[str]] = {}
        accounts: dict[str, gcp.serviceaccount.Account] = {}
        # A grant names a custom role by its IAM name, which exists once the role does.
        custom: dict[str, pulumi.Output[str]] = {}
        for role in custom_roles(args.accounts):
            declared = gcp.projects.IAMCustomRole(
                f"{name}-{role.role_id}",
                role_id=role.role_id,
                title=role.title,
                description=role.description,
                permissions=list(role.permissions),
                project=project,
                opts=child,
            )
            custom[role.role_id] = once(role.name(project), declared.id)
        for role in args.accounts:
            account = gcp.serviceaccount.Account(
                f"{name}-{role.name}",
                account_id=role.account_id,
                display_name=f"Hydrostream {role.name}",
                description=role.description,
                project=project,
                opts=child,
            )
            accounts[role.name] = account
            grants = [
                gcp.projects.IAMMember(
                    f"{name}-{role.name}-{project_role.removeprefix('roles/')}",
                    project=project,
                    role=project_role,
                    member=account.member,
                    opts=child,
                )
                for project_role in role.all_project_roles
            ] + [
                gcp.projects.IAMMember(
                    f"{name}-{role.name}-{custom_role.role_id}",
                    project=project,
                    role=custom[custom_role.role_id],
                    member=account.member,
                    opts=child,
                )
                for custom_role in role.custom_roles
            ]
            # Resolves once the account holds its roles: Dataproc refuses a VM account without its role.
            self.emails[role.name] = once(account.email, *(grant.id for grant in grants))
        for borrowed in args.accounts:
            if borrowed.borrowed_by is None:
                continue
            if borrowed.borrowed_by not in accounts:
                raise ValueError(f"role {borrowed.name} is borrowed by {borrowed.borrowed_by!r}, which has "
                                 f"no account here ({', '.join(accounts)})")
            grant = gcp.serviceaccount.IAMMember(
                f"{name}-{borrowed.name}-{ACCESS_TOKEN_MINTER.role_id}-{borrowed.borrowed_by}",
                service_account_id=accounts[borrowed.name].name,
                role=custom[ACCESS_TOKEN_MINTER.role_id],
                member=accounts[borrowed.borrowed_by].member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            # The borrowed account is usable once its borrower may mint its tokens.
            self.emails[borrowed.name] = once(self.emails[borrowed.name], grant.id)
        self.register_outputs({"emails": self.emails})
