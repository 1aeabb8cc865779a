"""The service VMs under mocks, per stack: private, shielded, OS Login, data on a separate disk that
survives the VM, catalog shapes, cloud-init that holds secret names but never secret values, and the
monitoring config archive (this stack's scrape targets and data sources) named by its digest."""

import dataclasses
import hashlib
import io
import re
import tarfile
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from hydrostream_jobs import contract

from infra import catalog, roles, sizing
from infra.gcp import monitoring, service_vm
from infra.gcp import stack as gcp_stack
from infra.gcp.influxdb import InfluxDb, InfluxDbArgs
from infra.gcp.kafka import KafkaBroker, KafkaBrokerArgs
from infra.gcp.monitoring import MonitoringVm
from infra.gcp.secrets import Secrets
from infra.model import StackModel
from infra.paths import PROJECT_DIR
from infra.render import cloud_init, grafana_config, prometheus_volume, vm_inputs
from infra.services import kafka as kafka_service
from infra.services.influxdb import InfluxDbSpec
from infra.services.kafka import KafkaSpec
from infra.settings import receiver_secret_values
from infra.tools import mocks
from tests.infra.conftest import GCP_STACKS, stack_file

INSTANCE = "gcp:compute/instance:Instance"
DISK = "gcp:compute/disk:Disk"
SUBNET = "projects/fake/regions/europe-west1/subnetworks/fake-subnet"
MASTER = "fake-cluster-m.europe-west1-b.c.fake.internal"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"



def vm_components(model: StackModel, master: str) -> dict[str, object]:
    """The three VM components declared with the builders infra/gcp/stack.py uses, with fixed stand-ins
    for what other components give (subnet, accounts, buckets) and the platform's real generated secrets
    (mock values `mock-<name>-value`), so that a leak of a value into metadata would show."""
    emails = {role.name: f"fake-{role.name}@fake.iam.gserviceaccount.com" for role in roles.ACCOUNTS}
    receivers = receiver_secret_values(model.receivers)  # what infra/__main__.py passes
    secrets = Secrets("secrets", gcp_stack.secrets_args(model, emails, receivers))
    site = gcp_stack.site(model, SUBNET)
    kafka = KafkaBroker("kafka", gcp_stack.kafka_args(model, site, emails, agent_bucket="fake-agents",
                                                      secret_ids=secrets.ids))
    influxdb = InfluxDb("influxdb", gcp_stack.influxdb_args(
        model, site, emails, secret_ids=secrets.ids, backup_bucket="fake-backups"))
    vm = MonitoringVm("monitoring", gcp_stack.monitoring_args(
        model, site, emails, secret_ids=secrets.ids, config_bucket="fake-config",
        kafka_ips=kafka.internal_ips, influxdb_ip=influxdb.internal_ip, dataproc_master=master))
    return {"bootstrap_servers": kafka.bootstrap_servers, "kafka_ips": kafka.internal_ips,
            "influx_url": influxdb.url, "influxdb_ip": influxdb.internal_ip,
            "monitoring_ip": vm.internal_ip, "grafana_url": vm.grafana_url, "iap_command": vm.iap_command}


def plan_vms(stack: str, master: str = MASTER) -> mocks.Plan:
    """The VM components of `stack` under mocks, the job drivers' host being `master`."""
    return mocks.run_components(stack, lambda settings: vm_components(settings, master))


# role -> its section of the stack file
ROLES = {catalog.BROKER: "kafka", catalog.TSDB: "influxdb", catalog.MONITORING: "monitoring"}
DEFAULT_MACHINE = "e2-standard-2"
DEFAULT_DISK_GB = {"kafka": 50, "influxdb": 50, "monitoring": 30}


@pytest.fixture(scope="module", params=GCP_STACKS)
def planned(request):
    return plan_vms(request.param)


def instances(planned) -> dict[str, mocks.PlannedResource]:
    """Role -> its (first) VM."""
    first: dict[str, mocks.PlannedResource] = {}
    for vm in sorted(planned.of_type(INSTANCE), key=lambda vm: vm.inputs["name"]):
        first.setdefault(vm.inputs["labels"]["role"], vm)
    return first


def brokers(planned) -> list[mocks.PlannedResource]:
    """The broker VMs in node id order (their names end in it when there are several)."""
    return sorted((vm for vm in planned.of_type(INSTANCE) if vm.inputs["labels"]["role"] == catalog.BROKER),
                  key=lambda vm: vm.inputs["name"])


def network_ip(vm: mocks.PlannedResource) -> str:
    return vm.inputs["networkInterfaces"][0]["networkIp"]


def secret_values(planned) -> list[str]:
    return [f"mock-{r.name}-value" for r in planned.resources if r.type.startswith("random:")]


# Policies as functions of a resource's inputs, so a test can also show that each one catches a breach.

def public_ip_interfaces(inputs: dict) -> list[dict]:
    return [nic for nic in inputs.get("networkInterfaces", [])
            if nic.get("accessConfigs") or nic.get("ipv6AccessConfigs")]


def leaked_values(inputs: dict, values: list[str]) -> list[str]:
    text = yaml.safe_dump(inputs)
    return [value for value in values if value in text]


def test_every_role_has_its_vms_each_with_a_disk(planned):
    assert sorted(instances(planned)) == sorted(ROLES)
    # One broker on dev, three on staging and prod (the stack files), one VM for the other roles.
    wanted = {"dev": 1, "staging": 3, "prod": 3}[planned.stack]
    assert len(brokers(planned)) == wanted
    assert len(planned.of_type(INSTANCE)) == len(planned.of_type(DISK)) == len(ROLES) - 1 + wanted


def test_no_vm_has_a_public_ip(planned):
    for vm in planned.of_type(INSTANCE):
        assert vm.inputs["networkInterfaces"], vm.name
        assert public_ip_interfaces(vm.inputs) == [], vm.name
        assert vm.inputs["networkInterfaces"][0]["subnetwork"] == SUBNET
        assert not vm.inputs.get("canIpForward")


def test_vms_keep_a_reserved_internal_address(planned):
    addresses = planned.of_type("gcp:compute/address:Address")
    assert len(addresses) == len(planned.of_type(INSTANCE))
    for vm in planned.of_type(INSTANCE):
        (address,) = [a for a in addresses if a.inputs["name"] == f"{vm.inputs['name']}-ip"]
        assert address.inputs["addressType"] == "INTERNAL"
        assert address.inputs["subnetwork"] == SUBNET
        assert address.urn in vm.dependencies
        assert vm.inputs["networkInterfaces"][0]["networkIp"]
    by_role = instances(planned)
    assert planned.outputs["kafka_ips"] == [network_ip(vm) for vm in brokers(planned)]
    assert planned.outputs["influxdb_ip"] == by_role[catalog.TSDB].inputs["networkInterfaces"][0]["networkIp"]


def test_the_public_ip_check_catches_an_access_config(planned):
    vm = next(iter(planned.of_type(INSTANCE)))
    nic = {**vm.inputs["networkInterfaces"][0], "accessConfigs": [{}]}
    broken = {**vm.inputs, "networkInterfaces": [nic]}
    assert public_ip_interfaces(broken) != []


def test_vms_are_shielded_with_os_login_on_cos(planned):
    for vm in planned.of_type(INSTANCE):
        assert vm.inputs["shieldedInstanceConfig"] == {
            "enableSecureBoot": True, "enableVtpm": True, "enableIntegrityMonitoring": True}, vm.name
        assert vm.inputs["metadata"]["enable-oslogin"] == "TRUE"
        image = vm.inputs["bootDisk"]["initializeParams"]["image"]
        assert re.fullmatch(r"projects/cos-cloud/global/images/(family/)?cos-[a-z0-9-]+", image), image


def test_vms_run_as_their_role_account_without_network_tags(planned):
    # The firewall rules select a VM by its account; a tag would be a second, weaker selector.
    for role, vm in instances(planned).items():
        assert "tags" not in vm.inputs, vm.name
        assert vm.inputs["serviceAccount"] == {
            "email": f"fake-{role}@fake.iam.gserviceaccount.com", "scopes": [CLOUD_PLATFORM]}
        assert "compute@developer.gserviceaccount.com" not in yaml.safe_dump(vm.inputs)


def test_machine_types_and_disk_sizes_come_from_the_stack_file(planned):
    config = stack_file(planned.stack)
    for role, vm in instances(planned).items():
        section = config.get(f"hydrostream:{ROLES[role]}") or {}
        assert vm.inputs["machineType"] == section.get("machine", DEFAULT_MACHINE)
        disk = next(d for d in planned.of_type(DISK) if d.parent == vm.parent)
        assert disk.inputs["size"] == section.get("disk_gb", DEFAULT_DISK_GB[ROLES[role]])


def test_prod_sizes_are_not_smaller_than_dev():
    def memory(stack: str, section: str) -> int:
        name = (stack_file(stack).get(f"hydrostream:{section}") or {}).get("machine", DEFAULT_MACHINE)
        return sizing.SHAPES[name].memory_mb
    for section in ("kafka", "influxdb"):
        assert memory("prod", section) >= memory("staging", section) >= memory("dev", section)


def test_data_disk_is_a_separate_resource_attached_as_data(planned):
    project = stack_file(planned.stack)["gcp:project"]
    for vm in planned.of_type(INSTANCE):
        disk = next(d for d in planned.of_type(DISK) if d.parent == vm.parent)
        zone = vm.inputs["zone"]
        assert disk.inputs["zone"] == zone
        if vm.inputs["labels"]["role"] != catalog.BROKER:
            assert zone == stack_file(planned.stack)["gcp:zone"]
        assert vm.inputs["attachedDisks"] == [{
            "source": f"projects/{project}/zones/{zone}/disks/{disk.inputs['name']}",
            "deviceName": "data",
            "mode": "READ_WRITE",
        }]
        assert disk.urn in vm.dependencies
        # The boot disk goes with the VM; the data disk is never the boot disk.
        assert "source" not in vm.inputs["bootDisk"]


def test_prod_protects_data_disks_and_vms(planned):
    prod = planned.stack == "prod"
    for disk in planned.of_type(DISK):
        assert disk.protect is prod, disk.name
        # Even when a protected stack is torn down on purpose, the data outlives the stack.
        assert disk.retain_on_delete is prod, disk.name
    for vm in planned.of_type(INSTANCE):
        assert vm.inputs["deletionProtection"] is prod, vm.name
        # Fixed names and a disk only one VM may hold: the old VM goes before its replacement.
        assert vm.delete_before_replace


def test_vms_and_disks_carry_app_env_and_role_labels(planned):
    for resource in (*planned.of_type(INSTANCE), *planned.of_type(DISK)):
        labels = resource.inputs["labels"]
        assert labels["app"] == "hydrostream" and labels["env"] == planned.stack, resource.name
        assert labels["role"] in ROLES


def test_user_data_holds_no_secret_value(planned):
    values = secret_values(planned)
    assert len(values) == len(catalog.GENERATED_SECRETS)
    for vm in planned.of_type(INSTANCE):
        assert leaked_values(vm.inputs, values) == [], vm.name
        assert not any(path.startswith("metadata") for path in vm.secret_paths), vm.name


def test_the_leak_check_catches_a_value_in_user_data(planned):
    values = secret_values(planned)
    vm = planned.of_type(INSTANCE)[0]
    broken = {**vm.inputs, "metadata": {**vm.inputs["metadata"], "user-data": f"token: {values[0]}"}}
    assert leaked_values(broken, values) == [values[0]]


# The lock's one jar, in the bucket vm_components gives the brokers, under its sha256.
AGENT_SHA256 = "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"
AGENT = vm_inputs.AgentJar(f"gs://fake-agents/agents/{AGENT_SHA256}/jmx_prometheus_javaagent-1.0.1.jar",
                           AGENT_SHA256)


def test_broker_user_data_is_the_renderers_document(planned):
    kafka = planned.settings.kafka
    count = len(brokers(planned))
    min_isr = {1: 1, 3: 2}[count]
    topics = (
        kafka_service.TopicSpec(contract.READINGS_TOPIC, kafka.partitions, kafka.retention_hours * 3_600_000,
                             replication_factor=count, min_insync_replicas=min_isr),
        kafka_service.TopicSpec(contract.DEAD_LETTER_TOPIC, kafka.partitions,
                             kafka.dead_letter_retention_hours * 3_600_000,
                             replication_factor=count, min_insync_replicas=min_isr),
    )
    voters = (("localhost:9093",) if count == 1
              else tuple(f"{network_ip(vm)}:9093" for vm in brokers(planned)))
    for node_id, vm in enumerate(brokers(planned), start=1):
        node = kafka_service.KafkaNode(node_id, vm.inputs["zone"], voters, min_isr)
        spec = KafkaSpec(service=catalog.KAFKA, heap_mb=sizing.kafka_heap_mb(kafka.machine.memory_mb),
                         topics=topics)
        project = stack_file(planned.stack)["gcp:project"]
        refs = [cloud_init.SecretRef(f"kafka-password-{user}",
                                     f"projects/{project}/secrets/hydrostream-kafka-password-{user}")
                for user in ("hydro-admin", "hydro-consumer", "hydro-producer")]
        expected = cloud_init.broker_cloud_init(spec, node, refs, agent=AGENT)
        assert vm.inputs["metadata"]["user-data"] == expected, vm.name


def test_tsdb_user_data_is_the_renderers_document_with_secret_names(planned):
    influxdb = planned.settings.influxdb
    project = stack_file(planned.stack)["gcp:project"]
    refs = [cloud_init.SecretRef(name, f"projects/{project}/secrets/hydrostream-{name}")
            for name in (catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN)]
    scoped = [cloud_init.SecretRef(name, f"projects/{project}/secrets/hydrostream-{name}")
              for name in (catalog.INFLUXDB_WRITE_TOKEN, catalog.INFLUXDB_READ_TOKEN)]
    spec = InfluxDbSpec(service=catalog.INFLUXDB, org=influxdb.org, bucket=influxdb.bucket,
                        retention=f"{influxdb.retention_days}d",
                        memory_limit_mb=sizing.influxdb_memory_limit_mb(influxdb.machine.memory_mb))
    expected = cloud_init.tsdb_cloud_init(spec, refs, scoped_tokens=scoped,
                                          backup=cloud_init.InfluxBackup(
                                              "fake-backups",
                                              f"fake-{roles.TSDB_BACKUP.name}@fake.iam.gserviceaccount.com"))
    user_data = instances(planned)[catalog.TSDB].inputs["metadata"]["user-data"]
    assert user_data == expected
    assert all(ref.secret_id in user_data for ref in (*refs, *scoped))


def test_endpoints_use_the_vms_internal_ips(planned):
    outputs = planned.outputs
    assert all(re.fullmatch(r"10(\.\d{1,3}){3}", ip) for ip in outputs["kafka_ips"])
    assert outputs["bootstrap_servers"] == ",".join(f"{ip}:9092" for ip in outputs["kafka_ips"])
    assert outputs["influx_url"] == f"http://{outputs['influxdb_ip']}:8086"
    assert outputs["influxdb_ip"] not in outputs["kafka_ips"]
    assert len(set(outputs["kafka_ips"])) == len(outputs["kafka_ips"])



def config_object(planned) -> mocks.PlannedResource:
    (uploaded,) = [o for o in planned.of_type("gcp:storage/bucketObject:BucketObject")
                   if o.inputs["bucket"] == "fake-config"]
    return uploaded


def config_archive_members(planned) -> dict[str, str]:
    source = config_object(planned).inputs["source"]
    with tarfile.open(source.path, mode="r:gz") as archive:
        return {member.name: archive.extractfile(member).read().decode()
                for member in archive.getmembers() if member.isfile()}


def test_monitoring_config_is_one_archive_named_by_its_digest(planned):
    uploaded = config_object(planned)
    data = Path(uploaded.inputs["source"].path).read_bytes()
    assert uploaded.inputs["bucket"] == "fake-config"
    assert uploaded.inputs["name"] == f"monitoring/{hashlib.sha256(data).hexdigest()}.tar.gz"
    members = config_archive_members(planned)
    assert {name.split("/", 1)[0] for name in members} == {
        "prometheus-config", "alertmanager-config", "grafana-provisioning"}
    assert "prometheus-config/prometheus.yml" in members
    assert "alertmanager-config/alertmanager.yml" in members
    assert any(name.startswith("prometheus-config/rules/") for name in members)
    assert "grafana-provisioning/datasources/datasources.yaml" in members
    shipped = PROJECT_DIR / "monitoring" / "grafana" / "dashboards"
    dashboards = sorted(p.name for p in shipped.glob("*.json"))
    assert dashboards
    for dashboard in dashboards:
        assert f"grafana-provisioning/dashboards/hydrostream/{dashboard}" in members


def test_prometheus_scrapes_this_stacks_hosts(planned):
    outputs = planned.outputs
    prometheus = yaml.safe_load(config_archive_members(planned)["prometheus-config/prometheus.yml"])
    targets = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
               for job in prometheus["scrape_configs"]}
    assert targets["hydro-consumer"] == [f"{MASTER}:8001"]
    assert targets["hydro-producer"] == [f"{MASTER}:8000"]
    assert targets["kafka"] == [f"{ip}:9404" for ip in outputs["kafka_ips"]]
    assert sorted(targets["node-exporter"]) == sorted(
        [*(f"{ip}:9100" for ip in outputs["kafka_ips"]), f"{outputs['influxdb_ip']}:9100", "localhost:9100"])
    # The services' own metrics: InfluxDB on the tsdb VM's HTTP port, Alertmanager and Grafana beside
    # Prometheus.
    assert targets["influxdb"] == [f"{outputs['influxdb_ip']}:8086"]
    assert targets["alertmanager"] == ["localhost:9093"]
    assert targets["grafana"] == ["localhost:3000"]
    assert prometheus["global"]["external_labels"] == {"stack": planned.stack}
    # Alertmanager runs beside Prometheus on the same VM: no firewall flow, localhost only.
    assert prometheus["alerting"]["alertmanagers"] == [{"static_configs": [{"targets": ["localhost:9093"]}]}]


def test_grafana_reads_this_stacks_influxdb_with_the_token_from_a_file(planned):
    datasources = config_archive_members(planned)["grafana-provisioning/datasources/datasources.yaml"]
    influx = next(d for d in yaml.safe_load(datasources)["datasources"] if d["type"] == "influxdb")
    assert influx["url"] == planned.outputs["influx_url"]
    assert influx["secureJsonData"]["token"].startswith("$__file{")


def test_monitoring_config_holds_no_secret_value(planned):
    text = "\n".join(config_archive_members(planned).values())
    assert leaked_values({"archive": text}, secret_values(planned)) == []


def test_monitoring_user_data_is_the_renderers_document(planned):
    project = stack_file(planned.stack)["gcp:project"]
    # The receiver secrets this stack configures (prod: all three, staging: the SMTP password and the
    # webhook URL, dev: none).
    receivers = {"dev": [], "staging": [catalog.SMTP_PASSWORD, catalog.WEBHOOK_URL],
                 "prod": [catalog.PAGERDUTY_ROUTING_KEY, catalog.SMTP_PASSWORD,
                          catalog.WEBHOOK_URL]}[planned.stack]
    refs = [cloud_init.SecretRef(name, f"projects/{project}/secrets/hydrostream-{name}")
            for name in sorted((catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN, *receivers))]
    expected = cloud_init.monitoring_cloud_init(
        ("prometheus-config", "alertmanager-config", "grafana-provisioning"), refs)
    metadata = instances(planned)[catalog.MONITORING].inputs["metadata"]
    assert metadata["user-data"] == expected
    # The bundle is named outside the cloud-config, by its JSON API media URL.
    name = config_object(planned).inputs["name"]
    assert metadata[cloud_init.CONFIG_BUNDLE_KEY] == (
        f"https://storage.googleapis.com/storage/v1/b/fake-config/o/{quote(name, safe='')}?alt=media")
    assert name not in metadata["user-data"]


# --- configuration changes are applied in place ---------------------------------------------------

def plan_prod(tmp_path: Path, master: str = MASTER) -> mocks.Plan:
    return plan_vms("prod", master)


def changed_copy(source: Path, target: Path, edit) -> Path:
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_text(path.read_text())
    edit(target)
    return target


def retitle_a_dashboard(folder: Path) -> None:
    path = sorted(folder.glob("*.json"))[0]
    path.write_text(path.read_text().replace('"title"', '"title_before"', 1) + "\n")


def add_an_alert_rule(folder: Path) -> None:
    (folder / "zz-extra.yml").write_text(
        "groups:\n- name: extra\n  rules:\n  - alert: Extra\n    expr: vector(1)\n")


CHANGES = {
    "dashboard": lambda tmp, mp: mp.setattr(grafana_config, "DASHBOARDS_DIR", changed_copy(
        grafana_config.DASHBOARDS_DIR, tmp / "dashboards", retitle_a_dashboard)),
    "alert rule": lambda tmp, mp: mp.setattr(prometheus_volume, "RULES_DIR", changed_copy(
        prometheus_volume.RULES_DIR, tmp / "rules", add_an_alert_rule)),
    "scrape target": None,  # the jobs' driver moves to another host
}


def at(inputs: dict, path: str):
    value = inputs
    for part in re.findall(r"[^.\[\]]+", path):
        value = value[int(part)] if isinstance(value, list) else value.get(part)
        if value is None:
            return None
    return value


@pytest.mark.parametrize("change", CHANGES)
def test_a_monitoring_config_change_on_prod_replaces_and_reboots_no_vm(change, tmp_path, monkeypatch):
    before = plan_prod(tmp_path)
    if CHANGES[change] is None:
        after = plan_prod(tmp_path, master="elsewhere-m.europe-west1-b.c.fake.internal")
    else:
        CHANGES[change](tmp_path, monkeypatch)
        after = plan_prod(tmp_path)
    assert config_object(before).inputs["name"] != config_object(after).inputs["name"], "nothing changed"
    old, new = instances(before), instances(after)
    for role, vm in new.items():
        assert vm.inputs["deletionProtection"] is True
        # Pulumi replaces on an input listed here, and the provider on its ForceNew inputs.
        assert vm.replace_on_changes == (), role
        for path in service_vm.REPLACING_INPUTS:
            assert at(vm.inputs, path) == at(old[role].inputs, path), (role, path)
        # The user-data is unchanged too (no reboot); only the bundle's metadata item moved on.
        before_metadata = dict(old[role].inputs["metadata"])
        after_metadata = dict(vm.inputs["metadata"])
        assert after_metadata["user-data"] == before_metadata["user-data"], role
        moved = {k for k in after_metadata if after_metadata[k] != before_metadata.get(k)}
        assert moved == ({cloud_init.CONFIG_BUNDLE_KEY} if role == catalog.MONITORING else set()), role
        assert {k: v for k, v in vm.inputs.items() if k != "metadata"} == {
            k: v for k, v in old[role].inputs.items() if k != "metadata"}, role


def test_the_replacement_check_sees_a_changed_replacing_input(tmp_path):
    vm = instances(plan_prod(tmp_path))[catalog.BROKER]
    moved = {**vm.inputs, "zone": "europe-west1-c"}
    assert [p for p in service_vm.REPLACING_INPUTS if at(moved, p) != at(vm.inputs, p)] == ["zone"]
    assert at(vm.inputs, "bootDisk.initializeParams")["image"] == service_vm.COS_IMAGE


def test_grafana_is_reached_on_its_internal_ip_or_through_iap(planned):
    config = stack_file(planned.stack)
    outputs = planned.outputs
    assert outputs["grafana_url"] == f"http://{outputs['monitoring_ip']}:3000"
    assert outputs["iap_command"] == (
        f"gcloud compute ssh hydrostream-{planned.stack}-monitoring --tunnel-through-iap "
        f"--zone={config['gcp:zone']} --project={config['gcp:project']} -- -N -L 3000:localhost:3000")


def test_config_archive_is_reproducible():
    files = {"b/two.yml": "2\n", "a/one.yml": "1\n"}
    first = monitoring.config_archive(files)
    assert first == monitoring.config_archive(dict(reversed(files.items())))
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        members = archive.getmembers()
    assert [m.name for m in members] == ["a/one.yml", "b/two.yml"]
    assert {(m.mtime, m.uid, m.gid, m.mode) for m in members} == {(0, 0, 0, 0o644)}


# --- narrow inputs ----------------------------------------------------------------------------------

VM_ARGS = (service_vm.ServiceVmArgs, service_vm.VmHost, service_vm.VmSite, KafkaBrokerArgs, InfluxDbArgs,
           monitoring.MonitoringVmArgs)


def whole_settings_fields(args: type) -> list[str]:
    """The fields of a dataclass annotated with the whole settings or model (annotations are source text)."""
    return [f.name for f in dataclasses.fields(args)
            if any(whole in str(f.type) for whole in ("StackSettings", "StackModel"))]


@pytest.mark.parametrize("args", VM_ARGS, ids=lambda cls: cls.__name__)
def test_vm_component_args_name_what_they_use_not_the_whole_settings(args):
    assert whole_settings_fields(args) == [], f"{args.__name__} takes the whole settings"
    assert args.__dataclass_params__.frozen


def test_the_narrow_inputs_check_catches_a_settings_field():
    @dataclasses.dataclass(frozen=True)
    class Wide:
        settings: "StackSettings"  # noqa: F821 (the annotation's text is what is checked)
        model: "StackModel"
        subnet: str

    assert whole_settings_fields(Wide) == ["settings", "model"]
