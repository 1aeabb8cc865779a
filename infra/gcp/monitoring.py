"""Prometheus, Alertmanager and Grafana on a private VM; their config ships as one archive in Cloud Storage.

The archive holds the config volumes (`prometheus-config`: prometheus.yml for this stack's targets and
the alert rules; `alertmanager-config`: the stack's receivers and routes, which
name the receiver secrets by file path only; `grafana-provisioning`: data sources, dashboard provider
and dashboards) and is named
by its digest, and the VM's `cloud_init.CONFIG_BUNDLE_KEY` metadata item names exactly one version of
it: a new dashboard, rule or IP changes that item in place and the VM applies it without a reboot. The
archive is too big for metadata.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from infra import catalog
from infra.gcp.jobs import bytes_asset
from infra.gcp.options import child_options
from infra.gcp.service_vm import ServiceVm, ServiceVmArgs, VmHost, VmSite, secret_refs
from infra.render import alertmanager_config, cloud_init, grafana_config, prometheus_volume
from infra.render.vm_inputs import ConfigBundle

PROMETHEUS_CONFIG = catalog.PROMETHEUS_CONFIG
GRAFANA_PROVISIONING = catalog.GRAFANA_PROVISIONING
ALERTMANAGER_CONFIG = catalog.ALERTMANAGER_CONFIG
CONFIG_VOLUMES = (PROMETHEUS_CONFIG, ALERTMANAGER_CONFIG, GRAFANA_PROVISIONING)
CONFIG_PREFIX = "monitoring"
# Prometheus, Alertmanager and Grafana share the VM's host network; node-exporter runs there too.
THIS_HOST = "localhost"


def config_files(stack: str, org: str, bucket: str, alerting: alertmanager_config.Receivers,
                 alerts: prometheus_volume.AlertRules, kafka_ips: Sequence[str], influxdb_ip: str,
                 dataproc_master: str) -> dict[str, str]:
    """Archive path (`<volume>/<file>`) -> text, for every file of the three CONFIG_VOLUMES."""
    targets = prometheus_volume.ScrapeTargets.for_hosts(
        stack=stack,
        spark_driver=dataproc_master,
        kafka_hosts=tuple(kafka_ips),
        node_hosts=(*kafka_ips, influxdb_ip, THIS_HOST),
        influxdb_host=influxdb_ip,
        prometheus_host=THIS_HOST,
        alertmanager_host=THIS_HOST,
        grafana_host=THIS_HOST,
    )
    sources = grafana_config.GrafanaDataSources(
        stack=stack, influxdb_host=influxdb_ip, prometheus_host=THIS_HOST, org=org, bucket=bucket)
    return {
        **{f"{PROMETHEUS_CONFIG}/{path}": text
           for path, text in prometheus_volume.prometheus_config_files(targets, alerts).items()},
        **{f"{ALERTMANAGER_CONFIG}/{path}": text
           for path, text in alertmanager_config.alertmanager_config_files(stack, alerting).items()},
        **{f"{GRAFANA_PROVISIONING}/{path}": text
           for path, text in grafana_config.grafana_provisioning_files(sources).items()},
    }


def config_archive(files: Mapping[str, str]) -> bytes:
    """A .tar.gz of `files`, byte-for-byte the same for the same files (sorted, no times or owners)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(files):
            data = files[path].encode()
            entry = tarfile.TarInfo(path)
            entry.size, entry.mode, entry.mtime = len(data), 0o644, 0
            archive.addfile(entry, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


@dataclass(frozen=True)
class MonitoringVmArgs:
    stack: str                                   # names the scrape targets and dashboards' stack
    project: str                                 # in the IAP command
    influxdb_org: str                            # Grafana's InfluxDB data source
    influxdb_bucket: str
    alerting: alertmanager_config.Receivers      # Alertmanager's receivers and routes
    alerts: prometheus_volume.AlertRules         # the stack's thresholds and runbook base in the alert rules
    host: VmHost
    site: VmSite
    secret_ids: Mapping[str, pulumi.Input[str]]  # catalog logical secret name -> projects/P/secrets/S
    config_bucket: pulumi.Input[str]             # bucket name the monitoring account may read
    kafka_ips: pulumi.Input[Sequence[str]]       # every broker (each serves its own metrics)
    influxdb_ip: pulumi.Input[str]               # its /metrics is scraped, Grafana queries it
    dataproc_master: pulumi.Input[str]           # host of the job drivers (their metrics endpoints)


class MonitoringVm(pulumi.ComponentResource):
    """Prometheus, Alertmanager and Grafana on a private VM; exposes its URLs, IP and `alert_receivers`."""

    def __init__(self, name: str, args: MonitoringVmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:monitoring:MonitoringVm", name, None, opts)
        archive = pulumi.Output.all(args.kafka_ips, args.influxdb_ip, args.dataproc_master).apply(
            lambda hosts: config_archive(config_files(
                args.stack, args.influxdb_org, args.influxdb_bucket, args.alerting, args.alerts, *hosts)))
        object_name = archive.apply(
            lambda data: f"{CONFIG_PREFIX}/{hashlib.sha256(data).hexdigest()}.tar.gz")
        uploaded = gcp.storage.BucketObject(
            f"{name}-config",
            bucket=args.config_bucket,
            name=object_name,
            source=archive.apply(lambda data: bytes_asset(data, "monitoring-config.tar.gz")),
            content_type="application/gzip",
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.config_uri: pulumi.Output[str] = pulumi.Output.all(uploaded.bucket, uploaded.output_name).apply(
            lambda parts: f"gs://{parts[0]}/{parts[1]}")

        refs = secret_refs(catalog.MONITORING, args.secret_ids)
        user_data = refs.apply(lambda values: cloud_init.monitoring_cloud_init(CONFIG_VOLUMES, values))
        bundle_url = self.config_uri.apply(lambda uri: ConfigBundle(uri, CONFIG_VOLUMES).media_url)
        vm = ServiceVm(name, ServiceVmArgs(
            role=catalog.MONITORING, host=args.host, site=args.site, user_data=user_data,
            metadata={cloud_init.CONFIG_BUNDLE_KEY: bundle_url},
        ), child_options(self, opts))

        port = catalog.GRAFANA.port("http")
        self.alert_receivers = alertmanager_config.receiver_summary(args.alerting)
        self.internal_ip = vm.internal_ip
        self.grafana_url: pulumi.Output[str] = vm.internal_ip.apply(lambda ip: f"http://{ip}:{port}")
        # SSH through IAP (the only way in from outside; OS Login decides who), forwarding Grafana's
        # port: then http://localhost:3000 on the operator's machine.
        self.iap_command: pulumi.Output[str] = pulumi.Output.all(vm.instance_name, vm.zone).apply(
            lambda parts: f"gcloud compute ssh {parts[0]} --tunnel-through-iap --zone={parts[1]} "
                          f"--project={args.project} -- -N -L {port}:localhost:{port}")
        self.register_outputs({
            "grafana_url": self.grafana_url,
            "internal_ip": self.internal_ip,
            "iap_command": self.iap_command,
            "config_uri": self.config_uri,
            "alert_receivers": self.alert_receivers,
        })
