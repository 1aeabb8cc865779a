"""Data Access audit logs for the services that hold the environment's secrets and data.

Admin Activity audit logs are always on; Data Access logs are off by default, so without these
nothing would say who read a secret's value or a backup, or who rewrote the monitoring config bundle.
Secret Manager and Cloud Storage log every data read and write (DATA_READ, DATA_WRITE) and metadata
read (ADMIN_READ), with no exempted member: the accounts of infra/roles.py included, so a misused
grant shows. Each `IAMAuditConfig` is authoritative for its service in the project's IAM policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra.gcp.options import child_options

AUDITED_SERVICES = ("secretmanager.googleapis.com", "storage.googleapis.com")
LOG_TYPES = ("ADMIN_READ", "DATA_READ", "DATA_WRITE")


@dataclass(frozen=True)
class AuditLogsArgs:
    project: str


class AuditLogs(pulumi.ComponentResource):
    """Data Access audit logs on for each of AUDITED_SERVICES."""

    def __init__(self, name: str, args: AuditLogsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:project:AuditLogs", name, None, opts)
        for service in AUDITED_SERVICES:
            gcp.projects.IAMAuditConfig(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                audit_log_configs=[gcp.projects.IAMAuditConfigAuditLogConfigArgs(log_type=log_type)
                                   for log_type in LOG_TYPES],
                opts=child_options(self, opts),
            )
        self.register_outputs({})
