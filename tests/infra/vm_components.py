"""A Pulumi program for tests/infra/test_gcp_vms.py: the three VM components, each built from its Args.

Run by `plan.run_plan(stack, config, program=...)` under mocks. Fixed stand-ins replace what other
components would give (the subnet, the accounts, the buckets); the generated secrets are the real
component's, so a secret value leaking into metadata would show. `hydrostream-test:dataproc_master`
names the job drivers' host.
"""

import pulumi

from infra import catalog
from infra.gcp.influxdb import InfluxDb, InfluxDbArgs
from infra.gcp.kafka import KafkaBroker, KafkaBrokerArgs, broker_names
from infra.gcp.monitoring import MonitoringVm, MonitoringVmArgs
from infra.gcp.secrets import Secrets, SecretsArgs
from infra.gcp.service_vm import VmHost, VmSite, instance_name
from infra.services import service_specs
from infra.settings import load_settings

SUBNET = "projects/fake/regions/europe-west1/subnetworks/fake-subnet"
BACKUP_ACCOUNT = "fake-backup@fake.iam.gserviceaccount.com"

settings = load_settings()
specs = service_specs(settings)
stack, gcp = settings.stack, settings.gcp
emails = {role: f"fake-{role}@fake.iam.gserviceaccount.com" for role in (*catalog.ROLES, catalog.DATAPROC)}
secrets = Secrets("secrets", SecretsArgs(settings, emails))

site = VmSite(region=gcp.region, subnet=SUBNET, labels=settings.labels, protect=settings.protect,
              snapshot_retention_days=settings.backups.snapshot_retention_days)
kafka = KafkaBroker("kafka", KafkaBrokerArgs(
    spec=specs.kafka, min_insync_replicas=settings.kafka.min_isr, site=site,
    hosts=tuple(VmHost(name, zone, settings.kafka.machine, settings.kafka.disk_gb, emails[catalog.BROKER])
                for name, zone in zip(broker_names(stack, settings.kafka.brokers), settings.broker_zones,
                                      strict=True))))
influxdb = InfluxDb("influxdb", InfluxDbArgs(
    spec=specs.influxdb, site=site,
    host=VmHost(instance_name(stack, catalog.TSDB), gcp.zone, settings.influxdb.machine,
                settings.influxdb.disk_gb, emails[catalog.TSDB]),
    secret_ids=secrets.ids, backup_bucket="fake-backups", backup_account_email=BACKUP_ACCOUNT))
monitoring = MonitoringVm("monitoring", MonitoringVmArgs(
    stack=stack, project=gcp.project, influxdb_org=settings.influxdb.org,
    influxdb_bucket=settings.influxdb.bucket, alerting=settings.alerting, site=site,
    host=VmHost(instance_name(stack, catalog.MONITORING), gcp.zone, settings.monitoring.machine,
                settings.monitoring.disk_gb, emails[catalog.MONITORING]),
    secret_ids=secrets.ids, config_bucket="fake-config", kafka_ips=kafka.internal_ips,
    influxdb_ip=influxdb.internal_ip,
    dataproc_master=pulumi.Config("hydrostream-test").require("dataproc_master")))

pulumi.export("bootstrap_servers", kafka.bootstrap_servers)
pulumi.export("kafka_ips", kafka.internal_ips)
pulumi.export("influx_url", influxdb.url)
pulumi.export("influxdb_ip", influxdb.internal_ip)
pulumi.export("monitoring_ip", monitoring.internal_ip)
pulumi.export("grafana_url", monitoring.grafana_url)
pulumi.export("iap_command", monitoring.iap_command)
