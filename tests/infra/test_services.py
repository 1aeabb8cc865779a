"""The service specs: one function per fact, rendered by the GCP VMs and the local containers alike.

The plans of `local` and `dev` are run for real (under mocks) with a spec function replaced: both
renderings change together, so neither target computes the fact on its own. Expected values are
computed here by hand from the rules the sizing catalog documents.
"""

import base64
import dataclasses
import re
import uuid

import pytest
from hydrostream_jobs import contract

from infra import catalog, sizing
from infra.model import derive
from infra.services import influxdb as influxdb_spec_module
from infra.services import kafka as kafka_spec_module
from infra.services.influxdb import InfluxDbSpec
from infra.services.kafka import KafkaNode, KafkaSpec, TopicSpec
from infra.services.spark import LocalSparkSpec, local_spark_spec
from infra.settings import parse_settings
from infra.tools import inventory, mocks

CONTAINER = "docker:index/container:Container"
INSTANCE = "gcp:compute/instance:Instance"


def local_env(planned: mocks.Plan, service: str) -> dict[str, str]:
    """The environment of the local container that runs `service`."""
    (resource,) = [r for r in planned.of_type(CONTAINER) if r.inputs.get("name") == f"hydrostream-{service}"]
    return dict(entry.split("=", 1) for entry in resource.inputs["envs"])


def vm_summary(planned: mocks.Plan, role: str) -> dict:
    """What the role's (first) VM runs, read back from its rendered cloud-config."""
    vms = sorted((r for r in planned.of_type(INSTANCE) if r.inputs["labels"]["role"] == role),
                 key=lambda r: r.name)
    return inventory.cloud_config_summary(vms[0].inputs["metadata"]["user-data"])


def local_topics(planned: mocks.Plan) -> list[str]:
    (resource,) = [r for r in planned.of_type(CONTAINER)
                   if r.inputs.get("name") == "hydrostream-kafka-topics"]
    return setup_topics(resource.inputs["command"])


def setup_topics(words: list[str]) -> list[str]:
    """The topics of kafka-setup.sh's arguments: BOOTSTRAP ADMIN SECRETS_DIR TOPIC... -- ACCESS..."""
    return words[words.index(catalog.SECRETS_DIR) + 1:words.index("--")]


def vm_topics(planned: mocks.Plan) -> list[str]:
    unit = vm_summary(planned, catalog.BROKER)["units"]["hydrostream-kafka-topics.service"]
    return setup_topics(unit.split())


def heap_by_hand(memory_mb: int) -> int:
    """A quarter of the memory, down to a multiple of 256 MB, from 1 GB to 6 GB."""
    quarter = memory_mb // 4 // 256 * 256
    return min(6144, max(1024, quarter))


# --- one function, both targets -----------------------------------------------------------------

def test_kafka_heap_of_local_and_dev_is_one_rule_of_the_memory_given(plans):
    local, dev = plans["local"], plans["dev"]
    container_mb = sizing.LOCAL_CONTAINER_MB[catalog.KAFKA.name]
    local_heap = heap_by_hand(container_mb)
    assert local_env(local, "kafka")["KAFKA_HEAP_OPTS"] == f"-Xms{local_heap}m -Xmx{local_heap}m"
    vm_heap = heap_by_hand(dev.settings.kafka.machine.memory_mb)
    assert vm_summary(dev, catalog.BROKER)["containers"]["kafka"]["env"]["KAFKA_HEAP_OPTS"] == (
        f"-Xms{vm_heap}m -Xmx{vm_heap}m")
    # 1536 MB container: a quarter is 384 MB, so the 1 GB floor; dev's 8 GB VM: 2 GB.
    assert (local_heap, vm_heap) == (1024, 2048)


def test_kafka_heap_of_local_and_dev_comes_from_the_same_function(monkeypatch):
    asked = []

    def sentinel(memory):
        asked.append(memory)
        return 1234

    monkeypatch.setattr(sizing, "kafka_heap_mb", sentinel)
    local, dev = mocks.run_plan("local"), mocks.run_plan("dev")
    assert local_env(local, "kafka")["KAFKA_HEAP_OPTS"] == "-Xms1234m -Xmx1234m"
    assert vm_summary(dev, catalog.BROKER)["containers"]["kafka"]["env"]["KAFKA_HEAP_OPTS"] == (
        "-Xms1234m -Xmx1234m")
    # Given the container's limit locally and the VM's memory on dev.
    assert sizing.LOCAL_CONTAINER_MB[catalog.KAFKA.name] in asked
    assert dev.settings.kafka.machine.memory_mb in asked


def test_topics_of_local_and_dev_come_from_the_same_function(monkeypatch):
    chosen = (TopicSpec(contract.READINGS_TOPIC, 5, 7_000), TopicSpec(contract.DEAD_LETTER_TOPIC, 3, 9_000))
    monkeypatch.setattr(kafka_spec_module, "topics", lambda kafka: chosen)
    local, dev = mocks.run_plan("local"), mocks.run_plan("dev")
    by_hand = [f"{contract.READINGS_TOPIC}:5:7000:1:1", f"{contract.DEAD_LETTER_TOPIC}:3:9000:1:1"]
    assert local_topics(local) == by_hand
    assert vm_topics(dev) == by_hand


def test_topics_by_default_are_the_stack_settings_on_both_targets(plans):
    local, dev = plans["local"], plans["dev"]
    for planned in (local, dev):
        kafka = planned.settings.kafka
        hours = {contract.READINGS_TOPIC: kafka.retention_hours,
                 contract.DEAD_LETTER_TOPIC: kafka.dead_letter_retention_hours}
        expected = [f"{name}:{kafka.partitions}:{h * 3600 * 1000}:1:1" for name, h in hours.items()]
        found = local_topics(planned) if planned.stack == "local" else vm_topics(planned)
        assert found == expected, planned.stack


def test_influxdb_environment_of_local_and_dev_comes_from_the_same_function(monkeypatch):
    real = InfluxDbSpec.env

    def marked(spec):
        return {**real.fget(spec), "HYDRO_SPEC_MARK": f"{spec.org}/{spec.memory_limit_mb}"}

    monkeypatch.setattr(influxdb_spec_module.InfluxDbSpec, "env", property(marked))
    monkeypatch.setattr(sizing, "influxdb_memory_limit_mb", lambda memory: 777)
    local, dev = mocks.run_plan("local"), mocks.run_plan("dev")
    local_influx = local_env(local, "influxdb")
    vm_influx = vm_summary(dev, catalog.TSDB)["containers"]["influxdb"]["env"]
    for env, planned in ((local_influx, local), (vm_influx, dev)):
        assert env["HYDRO_SPEC_MARK"] == f"{planned.settings.influxdb.org}/777", planned.stack
        assert env["GOMEMLIMIT"] == "777MiB", planned.stack


def test_influxdb_setup_by_default_is_the_settings_and_sixty_percent_rounded(plans):
    local, dev = plans["local"], plans["dev"]
    container_mb = sizing.LOCAL_CONTAINER_MB[catalog.INFLUXDB.name]
    limits = {"local": int(container_mb * 0.6) // 256 * 256,
              "dev": int(dev.settings.influxdb.machine.memory_mb * 0.6) // 256 * 256}
    assert limits["local"] == 512  # 614.4 MB rounded down to 256 MB steps, as on a VM
    for env, planned in ((local_env(local, "influxdb"), local),
                         (vm_summary(dev, catalog.TSDB)["containers"]["influxdb"]["env"], dev)):
        influxdb = planned.settings.influxdb
        assert {key: env[key] for key in ("DOCKER_INFLUXDB_INIT_MODE", "DOCKER_INFLUXDB_INIT_USERNAME",
                                          "DOCKER_INFLUXDB_INIT_ORG", "DOCKER_INFLUXDB_INIT_BUCKET",
                                          "DOCKER_INFLUXDB_INIT_RETENTION", "GOMEMLIMIT")} == {
            "DOCKER_INFLUXDB_INIT_MODE": "setup", "DOCKER_INFLUXDB_INIT_USERNAME": "admin",
            "DOCKER_INFLUXDB_INIT_ORG": influxdb.org, "DOCKER_INFLUXDB_INIT_BUCKET": influxdb.bucket,
            "DOCKER_INFLUXDB_INIT_RETENTION": f"{influxdb.retention_days}d",
            "GOMEMLIMIT": f"{limits[planned.stack]}MiB"}, planned.stack
        # Secret files by path only.
        token_file = f"{catalog.SECRETS_DIR}/{catalog.INFLUXDB_TOKEN}"
        assert env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"] == token_file


def test_specs_are_sized_by_the_vm_on_gcp_and_by_the_container_locally():
    dev = parse_settings("dev", mocks.stack_config("dev"))
    local = parse_settings("local", mocks.stack_config("local"))
    assert derive(dev).services.kafka.heap_mb == heap_by_hand(dev.kafka.machine.memory_mb)
    assert derive(local).services.kafka.heap_mb == heap_by_hand(sizing.LOCAL_CONTAINER_MB["kafka"])


# --- the specs refuse what cannot run -------------------------------------------------------------

TOPICS = (TopicSpec(contract.READINGS_TOPIC, 1, 1000), TopicSpec(contract.DEAD_LETTER_TOPIC, 1, 1000))


# A single broker, its own quorum.
NODE = KafkaNode(1, "zone-a", ("localhost:9093",), 1)


@pytest.mark.parametrize(("build", "named"), [
    (lambda: KafkaSpec(catalog.KAFKA, 128, TOPICS), "heap_mb must be at least 256, got 128"),
    (lambda: KafkaSpec(catalog.KAFKA, 1024, TOPICS[:1]), contract.DEAD_LETTER_TOPIC),
    (lambda: KafkaSpec(catalog.KAFKA, 1024, (*TOPICS, TOPICS[0])), "once"),
    (lambda: KafkaSpec(catalog.KAFKA, 1024, TOPICS).with_listener(
        catalog.KafkaListener("PLAINTEXT", 9095)), "distinct upper-case names"),
    (lambda: KafkaSpec(catalog.KAFKA, 1024, TOPICS, listeners=(catalog.KafkaListener("PLAINTEXT", 9092),)),
     "one must be the controller's"),
    (lambda: KafkaSpec(catalog.KAFKA, 1024, TOPICS).env({}, NODE), "advertise each of the Kafka listeners"),
    (lambda: InfluxDbSpec(catalog.INFLUXDB, " o", "b", "30d", 512), "org ' o'"),
    (lambda: InfluxDbSpec(catalog.INFLUXDB, "o", "b", "30 days", 512), "retention '30 days'"),
    (lambda: InfluxDbSpec(catalog.INFLUXDB, "o", "b", "30d", 32), "memory_limit_mb must be at least 64"),
    (lambda: LocalSparkSpec(catalog.SPARK, 3000, 1024, 4), "at least 4096 MB for two 1024 MB drivers"),
    (lambda: sizing.local_container_mb("mysql"), "no local container size for 'mysql'"),
])
def test_a_bad_spec_is_refused_naming_what_is_wrong(build, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        build()


def test_a_local_listener_is_added_with_its_port_and_advertised():
    spec = KafkaSpec(catalog.KAFKA, 1024, TOPICS).with_listener(catalog.KafkaListener("HOST", 9094))
    env = spec.env({"PLAINTEXT": "kafka", "HOST": "127.0.0.1"}, NODE)
    assert env["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,CONTROLLER://:9093,HOST://:9094"
    # Every listener authenticates, the host's too.
    assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == (
        "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT")
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092,HOST://127.0.0.1:9094"
    assert spec.service.port("host") == 9094
    # The catalog's Kafka is unchanged.
    assert catalog.KAFKA.env["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,CONTROLLER://:9093"


def test_every_local_container_has_a_size_and_spark_fits_its_drivers():
    assert set(sizing.LOCAL_CONTAINER_MB) == set(catalog.SERVICES)
    spark = local_spark_spec()
    assert spark.memory_mb >= 2 * 2 * spark.driver_memory_mb
    assert dataclasses.replace(spark, memory_mb=4096).memory_mb == 4096


def test_no_initial_directory_id_starts_with_a_dash_which_kafkas_tools_take_for_an_option():
    """A node's first directory id is a name-based UUID in Kafka's text form (base64url, unpadded); about one
    in 64 starts with "-", which `kafka-metadata-quorum remove-controller --controller-directory-id` then
    reads as an option. Kafka's own random ids draw again; so do these."""
    voters = [f"10.0.0.{host}:9093" for host in range(2, 200)]
    first_draws = {voter: base64.urlsafe_b64encode(uuid.uuid5(kafka_spec_module._DIRECTORY_IDS, f"1@{voter}")
                                                   .bytes).rstrip(b"=").decode() for voter in voters}
    dashed = [voter for voter, text in first_draws.items() if text.startswith("-")]
    assert dashed, "no voter of the sample would have drawn a dashed id: widen it"
    ids = {voter: kafka_spec_module.initial_directory_id(1, voter) for voter in voters}
    assert not [text for text in ids.values() if text.startswith("-")]
    # Every other id is the first draw, unchanged; each is 16 bytes in Kafka's form.
    assert all(ids[voter] == text for voter, text in first_draws.items() if voter not in dashed)
    assert all(len(base64.urlsafe_b64decode(text + "==")) == 16 for text in ids.values())
