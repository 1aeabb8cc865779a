"""The Kafka cluster in the offline plans of the GCP stacks: staging and prod run three brokers in three
zones of the region, each a voter of the same KRaft quorum, every topic on all three with two in sync;
dev runs one. The replication policy is a function of a plan, so a test also shows it catches a breach."""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
from pathlib import Path

import pytest
import yaml
from hydrostream_jobs import contract

from infra import catalog, settings
from infra.paths import PROJECT_DIR
from infra.tools import inventory, mocks
from tests.infra.conftest import GCP_STACKS

INSTANCE = "gcp:compute/instance:Instance"
ADDRESS = "gcp:compute/address:Address"
FIREWALL = "gcp:compute/firewall:Firewall"
# What the stack files ask for, written out here rather than read back from the settings.
BROKERS = {"dev": 1, "staging": 3, "prod": 3}


def brokers(p: mocks.Plan) -> list[mocks.PlannedResource]:
    return sorted((vm for vm in p.of_type(INSTANCE) if vm.inputs["labels"]["role"] == catalog.BROKER),
                  key=lambda vm: vm.inputs["name"])


def kafka_env(vm: mocks.PlannedResource) -> dict[str, str]:
    return inventory.cloud_config_summary(vm.inputs["metadata"]["user-data"])["containers"]["kafka"]["env"]


def kafka_command(vm: mocks.PlannedResource) -> list[str]:
    summary = inventory.cloud_config_summary(vm.inputs["metadata"]["user-data"])
    return summary["containers"]["kafka"]["command"]


def topic_specs(vm: mocks.PlannedResource) -> dict[str, tuple[int, int]]:
    """Topic -> (replication factor, min ISR) as the broker's topics unit creates it."""
    units = inventory.cloud_config_summary(vm.inputs["metadata"]["user-data"])["units"]
    words = units["hydrostream-kafka-topics.service"].split()
    specs = {}
    # kafka-setup.sh BOOTSTRAP ADMIN SECRETS_DIR TOPIC... -- ACCESS...
    for spec in words[words.index(catalog.SECRETS_DIR) + 1:words.index("--")]:
        name, _partitions, _retention, replicas, min_isr = spec.split(":")
        specs[name] = (int(replicas), int(min_isr))
    return specs


def network_ip(vm: mocks.PlannedResource) -> str:
    return vm.inputs["networkInterfaces"][0]["networkIp"]


# --- the replication policy ---------------------------------------------------------------------

def replication_violations(p: mocks.Plan) -> list[str]:
    """Every topic and internal topic on every broker, a write acknowledged by all but one of them."""
    vms = brokers(p)
    count = len(vms)
    wanted_min_isr = 1 if count == 1 else count - 1
    found = []
    for vm in vms:
        env = kafka_env(vm)
        for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_DEFAULT_REPLICATION_FACTOR"):
            if env.get(key) != str(count):
                found.append(f"{vm.name}: {key}={env.get(key)} with {count} brokers")
        for key in ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "KAFKA_MIN_INSYNC_REPLICAS"):
            if count > 1 and not 1 < int(env.get(key, "0")) < count:
                found.append(f"{vm.name}: {key}={env.get(key)}: a write must reach two brokers of {count}")
        specs = topic_specs(vm)
        for topic in (contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC):
            if topic not in specs:
                found.append(f"{vm.name}: topic {topic} is not created")
                continue
            replicas, min_isr = specs[topic]
            if replicas != count:
                found.append(f"{vm.name}: topic {topic} replication factor {replicas} with {count} brokers")
            if min_isr != wanted_min_isr:
                found.append(f"{vm.name}: topic {topic} min.insync.replicas {min_isr}, "
                             f"wanted {wanted_min_isr}")
    return found


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_every_topic_is_replicated_on_every_broker(plans, stack):
    assert replication_violations(plans[stack]) == []


def test_the_replication_policy_catches_replication_factor_one_with_three_brokers(plans):
    # prod's three broker VMs, each carrying the single-broker document of dev (RF 1, min ISR 1).
    prod, dev = plans["prod"], plans["dev"]
    single = brokers(dev)[0].inputs["metadata"]
    vms = [dataclasses.replace(vm, inputs={**vm.inputs, "metadata": single}) for vm in brokers(prod)]
    found = replication_violations(mocks.Plan("prod", vms, {}, frozenset(), prod.settings))
    assert any("topic hydro.readings replication factor 1 with 3 brokers" in line for line in found), found
    assert any("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1 with 3 brokers" in line for line in found), found
    assert any("KAFKA_MIN_INSYNC_REPLICAS=1" in line for line in found), found


# --- placement, quorum, clients -----------------------------------------------------------------

@pytest.mark.parametrize("stack", GCP_STACKS)
def test_brokers_are_in_distinct_zones_of_the_region_with_rack_the_zone(plans, stack):
    p = plans[stack]
    vms = brokers(p)
    assert len(vms) == BROKERS[stack]
    zones = [vm.inputs["zone"] for vm in vms]
    assert len(set(zones)) == len(zones)
    region = p.settings.gcp.region
    assert all(zone in settings.REGIONS[region] for zone in zones)
    assert zones[0] == p.settings.gcp.zone
    for vm in vms:
        assert kafka_env(vm)["KAFKA_BROKER_RACK"] == vm.inputs["zone"]
    # Node ids 1..n, one each; one cluster id for all.
    assert sorted(kafka_env(vm)["KAFKA_NODE_ID"] for vm in vms) == [str(i) for i in range(1, len(vms) + 1)]
    assert {kafka_env(vm)["CLUSTER_ID"] for vm in vms} == {catalog.KAFKA_CLUSTER_ID}


@pytest.mark.parametrize("stack", ("staging", "prod"))
def test_every_broker_votes_in_one_quorum_of_all_three_reserved_addresses(plans, stack):
    p = plans[stack]
    vms = brokers(p)
    # A dynamic quorum: every node finds the controllers at the same addresses, and is formatted with the
    # same three initial voters (kafka-start.sh's argument), no static voters.
    assert not any("KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka_env(vm) for vm in vms)
    controllers = {kafka_env(vm)["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] for vm in vms}
    assert controllers == {",".join(f"{network_ip(vm)}:9093" for vm in vms)}
    # bash kafka-start.sh INITIAL_CONTROLLERS ADMIN SECRETS_DIR SASL_DIR
    initial = {kafka_command(vm)[2] for vm in vms}
    (voters,) = initial
    assert [v.rsplit(":", 1)[0] for v in voters.split(",")] == [
        f"{i}@{network_ip(vm)}:9093" for i, vm in enumerate(vms, start=1)]
    # The addresses are static: each VM's address is reserved as its own resource, named after it.
    reserved = {a.inputs["name"] for a in p.of_type(ADDRESS)}
    assert {f"{vm.inputs['name']}-ip" for vm in vms} <= reserved
    assert [vm.inputs["name"] for vm in vms] == [f"hydrostream-{stack}-broker-{i}" for i in (1, 2, 3)]


def test_a_single_broker_is_its_own_quorum_under_its_old_name(plans):
    (vm,) = brokers(plans["dev"])
    assert vm.inputs["name"] == "hydrostream-dev-broker"
    assert kafka_env(vm)["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] == "localhost:9093"
    assert kafka_command(vm)[2].startswith("1@localhost:9093:")


@pytest.mark.parametrize("stack", GCP_STACKS)
def test_clients_and_monitoring_get_every_broker(plans, stack):
    p = plans[stack]
    ips = [network_ip(vm) for vm in brokers(p)]
    assert p.outputs["kafka_bootstrap_servers"] == ",".join(f"{ip}:9092" for ip in ips)
    assert p.outputs["kafka_brokers"] == {vm.inputs["name"]: vm.inputs["zone"] for vm in brokers(p)}
    assert p.outputs["instances"][catalog.BROKER] == brokers(p)[0].inputs["name"]
    # The jobs' Dataproc submissions carry the whole list.
    jobs = [r for r in p.resources if r.type == "gcp:dataproc/job:Job"]
    texts = [str(job.inputs) for job in jobs]
    assert texts and all(p.outputs["kafka_bootstrap_servers"] in text for text in texts)


def test_prod_broker_disks_are_protected_and_retained(plans):
    p = plans["prod"]
    disks = [d for d in p.of_type("gcp:compute/disk:Disk") if d.inputs["labels"]["role"] == catalog.BROKER]
    assert len(disks) == 3
    assert len({d.inputs["zone"] for d in disks}) == 3
    assert all(d.protect and d.retain_on_delete for d in disks)
    assert all(vm.inputs["deletionProtection"] for vm in brokers(p))


# --- firewall -------------------------------------------------------------------------------------

def rule(p: mocks.Plan, flow: str) -> mocks.PlannedResource | None:
    return next((r for r in p.of_type(FIREWALL) if r.inputs["name"] == f"hydrostream-allow-{flow}"), None)


@pytest.mark.parametrize("stack", ("staging", "prod"))
def test_brokers_reach_each_other_on_the_client_and_controller_ports(plans, stack):
    p = plans[stack]
    account = p.outputs["service_accounts"]
    between = rule(p, "kafka-between-brokers")
    assert between is not None
    assert between.inputs["sourceServiceAccounts"] == between.inputs["targetServiceAccounts"] == [
        account[catalog.BROKER]]
    assert between.inputs["allows"] == [{"protocol": "tcp", "ports": ["9092", "9093"]}]
    dataproc = rule(p, "kafka-from-dataproc")
    assert dataproc.inputs["sourceServiceAccounts"] == [account[catalog.DATAPROC]]
    assert dataproc.inputs["allows"] == [{"protocol": "tcp", "ports": ["9092"]}]
    metrics = rule(p, "kafka-metrics-from-monitoring")
    assert metrics.inputs["sourceServiceAccounts"] == [account[catalog.MONITORING]]
    assert metrics.inputs["targetServiceAccounts"] == [account[catalog.BROKER]]
    assert metrics.inputs["allows"] == [{"protocol": "tcp", "ports": ["9404"]}]


def test_a_single_broker_opens_no_broker_to_broker_flow(plans):
    assert rule(plans["dev"], "kafka-between-brokers") is None


@pytest.mark.parametrize("stack", ("staging", "prod"))
def test_prometheus_scrapes_every_broker(plans, stack):
    p = plans[stack]
    ips = [network_ip(vm) for vm in brokers(p)]
    (config,) = [o for o in p.of_type("gcp:storage/bucketObject:BucketObject")
                 if str(o.inputs["name"]).startswith("monitoring/")]
    with tarfile.open(config.inputs["source"].path, mode="r:gz") as archive:
        text = archive.extractfile("prometheus-config/prometheus.yml").read().decode()
    jobs = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
            for job in yaml.safe_load(text)["scrape_configs"]}
    assert jobs["kafka"] == [f"{ip}:9404" for ip in ips]
    assert all(f"{ip}:9100" in jobs["node-exporter"] for ip in ips)


# --- the metrics agent --------------------------------------------------------------------------

@pytest.mark.parametrize("stack", GCP_STACKS)
def test_the_locked_agent_jar_is_uploaded_once_and_every_broker_checks_it(plans, stack):
    p = plans[stack]
    project = yaml.safe_load((PROJECT_DIR / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"][
        "gcp:project"]
    (jar,) = [o for o in p.of_type("gcp:storage/bucketObject:BucketObject")
              if str(o.inputs["name"]).startswith("agents/")]
    # The lock's sha256, read from the lock file itself, names the object and is the uploaded file's.
    (line,) = [line for line in (PROJECT_DIR / "infra/release/broker-agent.lock").read_text().splitlines()
               if line and not line.startswith("#")]
    coordinate, sha256 = line.split()
    assert coordinate == "io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1"
    assert jar.inputs["bucket"] == f"{project}-broker-agents"
    assert jar.inputs["name"] == f"agents/{sha256}/jmx_prometheus_javaagent-1.0.1.jar"
    assert hashlib.sha256(Path(jar.inputs["source"].path).read_bytes()).hexdigest() == sha256
    url = (f"https://storage.googleapis.com/storage/v1/b/{project}-broker-agents/o/agents%2F{sha256}"
           "%2Fjmx_prometheus_javaagent-1.0.1.jar?alt=media")
    for vm in brokers(p):
        user_data = vm.inputs["metadata"]["user-data"]
        # As systemd reads it: the URL quoted, its `%` doubled.
        assert f'fetch-agent.sh "{url.replace("%", "%%")}" {sha256} ' in user_data, vm.name
