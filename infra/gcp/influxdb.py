"""InfluxDB 2.x on a private VM: set up once from Secret Manager credentials, its data on the data disk.

It also creates the scoped tokens (the consumer's write token, Grafana's read token) and adds them to
their secrets: `secret_ids` names those secrets too. It backs everything up daily to the backup bucket
as the backup account (infra/render/cloud_init.py, infra/gcp/identity.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra import catalog
from infra.gcp.options import child_options
from infra.gcp.service_vm import ServiceVm, ServiceVmArgs, VmHost, VmSite, secret_refs
from infra.render import cloud_init
from infra.services.influxdb import InfluxDbSpec


@dataclass(frozen=True)
class InfluxDbArgs:
    spec: InfluxDbSpec                           # setup, memory limit, environment (infra.services)
    host: VmHost
    site: VmSite
    secret_ids: Mapping[str, pulumi.Input[str]]  # catalog logical secret name -> projects/P/secrets/S
    backup_bucket: pulumi.Input[str]             # the bucket name the daily backups are uploaded to
    backup_account_email: pulumi.Input[str]      # the account they are uploaded as (object create only)


class InfluxDb(pulumi.ComponentResource):
    """InfluxDB on a private VM; exposes `url` ("http://<ip>:8086") and `internal_ip`."""

    def __init__(self, name: str, args: InfluxDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:tsdb:InfluxDb", name, None, opts)
        scoped = [token.secret for token in catalog.SCOPED_TOKENS]
        missing = [secret for secret in scoped if secret not in args.secret_ids]
        if missing:
            raise ValueError(f"the {catalog.TSDB} VM needs the Secret Manager ids of {missing}")
        scoped_refs = pulumi.Output.all(*(args.secret_ids[secret] for secret in scoped)).apply(
            lambda ids: [cloud_init.SecretRef(secret, secret_id)
                         for secret, secret_id in zip(scoped, ids, strict=True)])
        backup = pulumi.Output.all(args.backup_bucket, args.backup_account_email).apply(
            lambda parts: cloud_init.InfluxBackup(bucket=parts[0], account_email=parts[1]))
        user_data = pulumi.Output.all(secret_refs(catalog.TSDB, args.secret_ids), scoped_refs, backup).apply(
            lambda refs: cloud_init.tsdb_cloud_init(args.spec, refs[0], scoped_tokens=refs[1],
                                                    backup=refs[2]))
        vm = ServiceVm(name, ServiceVmArgs(
            role=catalog.TSDB, host=args.host, site=args.site, user_data=user_data,
        ), child_options(self, opts))

        port = catalog.INFLUXDB.port("http")
        self.internal_ip = vm.internal_ip
        self.url: pulumi.Output[str] = vm.internal_ip.apply(lambda ip: f"http://{ip}:{port}")
        self.register_outputs({"url": self.url, "internal_ip": self.internal_ip})

