"""The GCP environment (dev, staging, prod): every component, wired together from the stack model.

Wiring only: each builder below turns the model (infra/model.py) and what other components give
(subnet, accounts, buckets, secret ids, addresses) into one component's Args. The component tests
(tests/infra) declare components with these same builders, so a change here is a change there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from infra import catalog, roles
from infra.gcp import firewall
from infra.gcp.apis import ProjectApis, ProjectApisArgs
from infra.gcp.audit import AuditLogs, AuditLogsArgs
from infra.gcp.dataproc import DataprocCluster, DataprocClusterArgs
from infra.gcp.firewall import EgressRules, EgressRulesArgs, FirewallRules, FirewallRulesArgs
from infra.gcp.identity import ServiceAccounts, ServiceAccountsArgs
from infra.gcp.influxdb import InfluxDb, InfluxDbArgs
from infra.gcp.jobs import StreamingJobs, StreamingJobsArgs
from infra.gcp.kafka import KafkaBroker, KafkaBrokerArgs
from infra.gcp.monitoring import MonitoringVm, MonitoringVmArgs
from infra.gcp.network import Network, NetworkArgs
from infra.gcp.secrets import Secrets, SecretsArgs
from infra.gcp.service_vm import VmHost, VmSite, instance_name
from infra.gcp.storage import Buckets, BucketsArgs
from infra.model import Gcp, StackModel, Vm
from infra.release import connector_jars

Emails = Mapping[str, pulumi.Input[str]]      # role name -> its service account's e-mail
SecretIds = Mapping[str, pulumi.Input[str]]   # catalog secret name -> projects/P/secrets/S


def _gcp(model: StackModel) -> Gcp:
    if model.gcp is None:
        raise ValueError(f"stack {model.stack!r} is not on the gcp target")
    return model.gcp


def host(vm: Vm, email: pulumi.Input[str]) -> VmHost:
    return VmHost(vm.name, vm.zone, vm.machine, vm.disk_gb, email)


def site(model: StackModel, subnet: pulumi.Input[str]) -> VmSite:
    gcp = _gcp(model)
    return VmSite(region=gcp.region, subnet=subnet, labels=model.labels, protect=model.protect,
                  snapshot_retention_days=gcp.snapshot_retention_days)


def secrets_args(model: StackModel, emails: Emails,
                 receiver_values: Mapping[str, pulumi.Output[str]]) -> SecretsArgs:
    """The secrets; `receiver_values`: the configured receivers' secret config (infra/__main__.py)."""
    return SecretsArgs(_gcp(model).project, model.labels, model.protect, roles.ACCOUNTS, emails,
                       receiver_values=receiver_values)


def kafka_args(model: StackModel, vm_site: VmSite, emails: Emails, *,
               agent_bucket: pulumi.Input[str], secret_ids: SecretIds) -> KafkaBrokerArgs:
    gcp = _gcp(model)
    return KafkaBrokerArgs(spec=model.services.kafka, min_insync_replicas=gcp.min_insync_replicas,
                           site=vm_site, hosts=tuple(host(vm, emails[catalog.BROKER]) for vm in gcp.brokers),
                           agent_bucket=agent_bucket, agent_jar=connector_jars.broker_agent(),
                           secret_ids=secret_ids)


def influxdb_args(model: StackModel, vm_site: VmSite, emails: Emails, *, secret_ids: SecretIds,
                  backup_bucket: pulumi.Input[str]) -> InfluxDbArgs:
    return InfluxDbArgs(spec=model.services.influxdb, site=vm_site,
                        host=host(_gcp(model).influxdb, emails[catalog.TSDB]),
                        secret_ids=secret_ids, backup_bucket=backup_bucket,
                        backup_account_email=emails[roles.TSDB_BACKUP.name])


def dataproc_args(model: StackModel, *, subnet: pulumi.Input[str], service_account_email: pulumi.Input[str],
                  staging_bucket: pulumi.Input[str], temp_bucket: pulumi.Input[str]) -> DataprocClusterArgs:
    gcp = _gcp(model)
    cluster = gcp.cluster
    return DataprocClusterArgs(
        cluster.name, gcp.project, gcp.region, gcp.zone, model.labels,
        master=cluster.master, worker=cluster.worker, workers=cluster.workers,
        boot_disk_gb=cluster.boot_disk_gb, idle_delete_minutes=cluster.idle_delete_minutes,
        properties=cluster.properties, subnet=subnet, service_account_email=service_account_email,
        staging_bucket=staging_bucket, temp_bucket=temp_bucket)


def monitoring_args(model: StackModel, vm_site: VmSite, emails: Emails, *, secret_ids: SecretIds,
                    config_bucket: pulumi.Input[str], kafka_ips: pulumi.Input[Sequence[str]],
                    influxdb_ip: pulumi.Input[str], dataproc_master: pulumi.Input[str]) -> MonitoringVmArgs:
    gcp, influxdb = _gcp(model), model.services.influxdb
    return MonitoringVmArgs(
        stack=model.stack, project=gcp.project, influxdb_org=influxdb.org, influxdb_bucket=influxdb.bucket,
        alerting=model.receivers, alerts=model.alerts, host=host(gcp.monitoring, emails[catalog.MONITORING]),
        site=vm_site,
        secret_ids=secret_ids, config_bucket=config_bucket, kafka_ips=kafka_ips, influxdb_ip=influxdb_ip,
        dataproc_master=dataproc_master)


def jobs_args(model: StackModel, *, cluster_name: pulumi.Input[str],
              artifacts_bucket: pulumi.Input[str], checkpoint_bucket: pulumi.Input[str],
              bootstrap_servers: pulumi.Input[str], influx_url: pulumi.Input[str],
              secret_ids: SecretIds) -> StreamingJobsArgs:
    """The streaming jobs' Args; the consumer is given the write-only token's secret (never the operator
    token: DESIGN, "Tokens by need")."""
    gcp, jobs, influxdb = _gcp(model), model.jobs, model.services.influxdb
    return StreamingJobsArgs(
        model.stack, gcp.region, model.labels, bundle=model.bundle, release_pin=jobs.release_pin,
        flags=jobs.flags, restarts=jobs.restarts,
        influx_org=influxdb.org, influx_bucket=influxdb.bucket,
        consumer_properties=jobs.consumer_properties,
        producer_properties=jobs.producer_properties,
        cluster_name=cluster_name,
        artifacts_bucket=artifacts_bucket,
        checkpoint_bucket=checkpoint_bucket,
        bootstrap_servers=bootstrap_servers,
        influx_url=influx_url,
        token_secret_id=secret_ids[catalog.INFLUXDB_WRITE_TOKEN],
        kafka_password_secret_ids={user: secret_ids[catalog.kafka_password(user)]
                                   for user in (catalog.KAFKA_PRODUCER_USER, catalog.KAFKA_CONSUMER_USER)},
    )


def deploy(model: StackModel, receiver_values: Mapping[str, pulumi.Output[str]]) -> dict[str, Any]:
    """Declare the environment's resources; return the stack outputs (no secret values among them)."""
    gcp, stack = _gcp(model), model.stack
    project = gcp.project
    # Everything else waits on the network or the service accounts, so on the APIs.
    after_apis = pulumi.ResourceOptions(depends_on=[ProjectApis("apis", ProjectApisArgs(project))])
    network = Network("network", NetworkArgs(stack, gcp.region, gcp.subnet_cidr, model.labels), after_apis)
    identity = ServiceAccounts("identity", ServiceAccountsArgs(project, roles.ACCOUNTS), after_apis)
    emails = identity.emails
    FirewallRules("firewall", FirewallRulesArgs(network.network_id, firewall.flows(
        len(gcp.brokers), gcp.grafana_source_ranges), emails))
    egress = EgressRules("egress", EgressRulesArgs(network.network_id, firewall.egress_flows(
        gcp.subnet_cidr, model.receivers), emails, after=network.private_apis_records))
    AuditLogs("audit", AuditLogsArgs(project), after_apis)
    buckets = Buckets("buckets", BucketsArgs(
        project, gcp.region, model.labels, model.protect,
        backup_retention_days=gcp.backup_retention_days,
        accounts=roles.ACCOUNTS, service_account_emails=emails), after_apis)
    secrets = Secrets("secrets", secrets_args(model, emails, receiver_values), after_apis)
    subnet = network.subnet_self_link

    vm_site = site(model, subnet)
    kafka = KafkaBroker("kafka", kafka_args(model, vm_site, emails, agent_bucket=buckets.agents,
                                            secret_ids=secrets.ids), after_apis)
    influxdb = InfluxDb("influxdb", influxdb_args(
        model, vm_site, emails, secret_ids=secrets.ids, backup_bucket=buckets.backups), after_apis)
    cluster = DataprocCluster("dataproc", dataproc_args(
        model, subnet=subnet, service_account_email=emails[catalog.DATAPROC],
        staging_bucket=buckets.staging, temp_bucket=buckets.temp),
        # Its nodes reach Cloud Storage at boot only through the egress rules and the private DNS zone
        # they wait for: created beside rules still being written, the cluster's init could fail.
        pulumi.ResourceOptions(depends_on=[egress]))
    monitoring = MonitoringVm("monitoring", monitoring_args(
        model, vm_site, emails, secret_ids=secrets.ids, config_bucket=buckets.config,
        kafka_ips=kafka.internal_ips, influxdb_ip=influxdb.internal_ip,
        dataproc_master=cluster.master_hostname), after_apis)
    jobs = StreamingJobs("jobs", jobs_args(
        model, cluster_name=cluster.cluster_name, artifacts_bucket=buckets.artifacts,
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
