"""The GCP environment (dev, staging, prod): every component, wired together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

from infra import catalog, roles
from infra.gcp import dataproc, firewall
from infra.gcp.apis import ProjectApis, ProjectApisArgs
from infra.gcp.audit import AuditLogs, AuditLogsArgs
from infra.gcp.dataproc import DataprocCluster, DataprocClusterArgs
from infra.gcp.firewall import EgressRules, EgressRulesArgs, FirewallRules, FirewallRulesArgs
from infra.gcp.identity import ServiceAccounts, ServiceAccountsArgs
from infra.gcp.influxdb import InfluxDb, InfluxDbArgs
from infra.gcp.jobs import StreamingJobs, StreamingJobsArgs
from infra.gcp.kafka import KafkaBroker, KafkaBrokerArgs, broker_names
from infra.gcp.monitoring import MonitoringVm, MonitoringVmArgs
from infra.gcp.network import Network, NetworkArgs
from infra.gcp.secrets import Secrets, SecretsArgs
from infra.gcp.service_vm import VmHost, VmSite, instance_name
from infra.gcp.storage import Buckets, BucketsArgs
from infra.services import service_specs
from infra.settings import StackSettings, receiver_secret_values


def jobs_args(settings: StackSettings, *, cluster_name: pulumi.Input[str],
              artifacts_bucket: pulumi.Input[str], checkpoint_bucket: pulumi.Input[str],
              bootstrap_servers: pulumi.Input[str], influx_url: pulumi.Input[str],
              secret_ids: Mapping[str, pulumi.Input[str]]) -> StreamingJobsArgs:
    """The streaming jobs' Args from the settings and what they run against; the consumer is given the
    write-only token's secret (never the operator token: DESIGN, "Tokens by need")."""
    spark = settings.spark
    return StreamingJobsArgs(
        settings.stack, settings.gcp.region, settings.labels, settings.jobs,
        influx_org=settings.influxdb.org, influx_bucket=settings.influxdb.bucket,
        consumer_properties=spark.job_properties(spark.consumer_executors),
        producer_properties=spark.job_properties(spark.producer_executors),
        cluster_name=cluster_name,
        artifacts_bucket=artifacts_bucket,
        checkpoint_bucket=checkpoint_bucket,
        bootstrap_servers=bootstrap_servers,
        influx_url=influx_url,
        token_secret_id=secret_ids[catalog.INFLUXDB_WRITE_TOKEN],
    )


def deploy(settings: StackSettings) -> dict[str, Any]:
    """Declare the environment's resources; return the stack outputs (no secret values among them)."""
    gcp, stack = settings.gcp, settings.stack
    project = gcp.project
    # Everything else waits on the network or the service accounts, so on the APIs.
    after_apis = pulumi.ResourceOptions(depends_on=[ProjectApis("apis", ProjectApisArgs(project))])
    network = Network("network", NetworkArgs(stack, gcp.region,
                                             settings.network.subnet_cidr, settings.labels), after_apis)
    FirewallRules("firewall", FirewallRulesArgs(network.network_id, firewall.flows(
        settings.kafka.brokers, settings.network.grafana_source_ranges)))
    EgressRules("egress", EgressRulesArgs(network.network_id, firewall.egress_flows(
        settings.network.subnet_cidr, settings.alerting), after=network.private_apis_records))
    AuditLogs("audit", AuditLogsArgs(project), after_apis)
    identity = ServiceAccounts("identity", ServiceAccountsArgs(project, roles.ACCOUNTS), after_apis)
    emails = identity.emails
    buckets = Buckets("buckets", BucketsArgs(
        project, gcp.region, settings.labels, settings.protect,
        backup_retention_days=settings.backups.influxdb_retention_days,
        accounts=roles.ACCOUNTS, service_account_emails=emails), after_apis)
    secrets = Secrets("secrets", SecretsArgs(
        project, settings.labels, settings.protect, roles.ACCOUNTS, emails,
        receiver_values=receiver_secret_values(settings.alerting)), after_apis)
    subnet = network.subnet_self_link

    specs = service_specs(settings)
    site = VmSite(region=gcp.region, subnet=subnet, labels=settings.labels, protect=settings.protect,
                  snapshot_retention_days=settings.backups.snapshot_retention_days)
    brokers = tuple(VmHost(name, zone, settings.kafka.machine, settings.kafka.disk_gb, emails[catalog.BROKER])
                    for name, zone in zip(broker_names(stack, settings.kafka.brokers), settings.broker_zones,
                                          strict=True))
    kafka = KafkaBroker("kafka", KafkaBrokerArgs(
        spec=specs.kafka, hosts=brokers, min_insync_replicas=settings.kafka.min_isr, site=site), after_apis)
    influxdb = InfluxDb("influxdb", InfluxDbArgs(
        spec=specs.influxdb, site=site,
        host=VmHost(instance_name(stack, catalog.TSDB), gcp.zone, settings.influxdb.machine,
                    settings.influxdb.disk_gb, emails[catalog.TSDB]),
        secret_ids=secrets.ids, backup_bucket=buckets.backups,
        backup_account_email=emails[roles.TSDB_BACKUP.name]), after_apis)
    spark = settings.spark
    cluster = DataprocCluster("dataproc", DataprocClusterArgs(
        dataproc.cluster_name(stack), project, gcp.region, gcp.zone,
        settings.labels,
        master=settings.dataproc.master, worker=settings.dataproc.worker,
        workers=settings.dataproc.workers, boot_disk_gb=settings.dataproc.boot_disk_gb,
        idle_delete_minutes=settings.dataproc.idle_delete_minutes,
        properties=dataproc.cluster_properties(spark),
        subnet=subnet, service_account_email=emails[catalog.DATAPROC],
        staging_bucket=buckets.staging, temp_bucket=buckets.temp),
        # Its init installs `dataproc:pip.packages` from PyPI: through NAT, so NAT must exist first.
        pulumi.ResourceOptions(depends_on=[network.nat]))
    monitoring = MonitoringVm("monitoring", MonitoringVmArgs(
        stack=stack, project=gcp.project, influxdb_org=specs.influxdb.org,
        influxdb_bucket=specs.influxdb.bucket, alerting=settings.alerting,
        host=VmHost(instance_name(stack, catalog.MONITORING), gcp.zone, settings.monitoring.machine,
                    settings.monitoring.disk_gb, emails[catalog.MONITORING]),
        site=site, secret_ids=secrets.ids, config_bucket=buckets.config,
        kafka_ips=kafka.internal_ips,
        influxdb_ip=influxdb.internal_ip,
        dataproc_master=cluster.master_hostname,
    ), after_apis)
    jobs = StreamingJobs("jobs", jobs_args(
        settings, cluster_name=cluster.cluster_name, artifacts_bucket=buckets.artifacts,
        checkpoint_bucket=buckets.checkpoints, bootstrap_servers=kafka.bootstrap_servers,
        influx_url=influxdb.url, secret_ids=secrets.ids))

    return {
        "project": project,
        "zone": gcp.zone,
        # What the host checks (tests/hosts) reach through IAP, by role.
        "instances": {
            **{role: instance_name(stack, role) for role in catalog.ROLES},
            # Broker 1 is in the stack's zone; the others, by name, in theirs (kafka_brokers).
            catalog.BROKER: next(iter(kafka.instances)),
            "dataproc_master": cluster.cluster_name.apply(lambda name: f"{name}-m"),
        },
        "kafka_bootstrap_servers": kafka.bootstrap_servers,
        "kafka_brokers": kafka.instances,
        "influxdb_url": influxdb.url,
        "grafana_url": monitoring.grafana_url,
        "grafana_iap_command": monitoring.iap_command,
        "alert_receivers": monitoring.alert_receivers,
        "dataproc_cluster": cluster.cluster_name,
        "dataproc_master": cluster.master_hostname,
        "consumer_job_id": jobs.consumer_job_id,
        "producer_job_id": jobs.producer_job_id,
        "release": jobs.release,
        "buckets": buckets.names,
        "service_accounts": emails,
        "secret_ids": secrets.ids,
    }
