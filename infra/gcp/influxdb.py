"""InfluxDB 2.x on a private VM: set up once from Secret Manager credentials, its data on the data disk.

It also creates the scoped tokens (the consumer's write token, Grafana's read token) and adds them to
their secrets: `secret_ids` names those secrets too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi

from infra import catalog, cloud_init, sizing
from infra.gcp.service_vm import ServiceVm, ServiceVmArgs, secret_refs
from infra.settings import StackSettings


@dataclass(frozen=True)
class InfluxDbArgs:
    settings: StackSettings
    subnet: pulumi.Input[str]
    service_account_email: pulumi.Input[str]
    secret_ids: Mapping[str, pulumi.Input[str]]  # catalog logical secret name -> projects/P/secrets/S


class InfluxDb(pulumi.ComponentResource):
    """InfluxDB on a private VM; exposes `url` ("http://<ip>:8086") and `internal_ip`."""

    def __init__(self, name: str, args: InfluxDbArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:tsdb:InfluxDb", name, None, opts)
        influxdb = args.settings.influxdb
        memory_limit_mb = sizing.influxdb_memory_limit_mb(influxdb.machine)
        scoped = [token.secret for token in catalog.SCOPED_TOKENS]
        missing = [secret for secret in scoped if secret not in args.secret_ids]
        if missing:
            raise ValueError(f"the {catalog.TSDB} VM needs the Secret Manager ids of {missing}")
        scoped_refs = pulumi.Output.all(*(args.secret_ids[secret] for secret in scoped)).apply(
            lambda ids: [cloud_init.SecretRef(secret, secret_id)
                         for secret, secret_id in zip(scoped, ids, strict=True)])
        user_data = pulumi.Output.all(secret_refs(catalog.TSDB, args.secret_ids), scoped_refs).apply(
            lambda refs: cloud_init.tsdb_cloud_init(
                influxdb.org, influxdb.bucket, f"{influxdb.retention_days}d", memory_limit_mb, refs[0],
                scoped_tokens=refs[1]))
        vm = ServiceVm(name, ServiceVmArgs(
            settings=args.settings,
            role=catalog.TSDB,
            machine=influxdb.machine,
            disk_gb=influxdb.disk_gb,
            subnet=args.subnet,
            service_account_email=args.service_account_email,
            user_data=user_data,
        ), pulumi.ResourceOptions(parent=self, depends_on=opts.depends_on if opts else None))

        port = catalog.INFLUXDB.port("http")
        self.internal_ip = vm.internal_ip
        self.url: pulumi.Output[str] = vm.internal_ip.apply(lambda ip: f"http://{ip}:{port}")
        self.register_outputs({"url": self.url, "internal_ip": self.internal_ip})
