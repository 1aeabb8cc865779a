"""The `local` stack under mocks: every catalog service as a container, safe by construction.

Expected values come from the catalog, the settings, `infra.job_commands` and requirements.lock,
never from the local stack's own modules, so a change there that breaks a rule fails here.
"""

import dataclasses
import hashlib
import importlib.metadata
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
import yaml
from hydrostream_jobs import cli, contract
from packaging.specifiers import SpecifierSet
from pulumi.runtime import rpc

from infra import catalog, roles
from infra.job_commands import TokenSource, consumer_args, kafka_login, producer_args
from infra.local import stack as local_stack
from infra.local.services import Upload, check_one_shot_exit, uploads_digest
from infra.paths import PROJECT_DIR
from infra.release.bundle import JOBS_DIR, build_bundle
from infra.release.python_wheels import LOCK as WHEEL_LOCK
from tests.ports import free_port

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
LOOPBACK = "127.0.0.1"
DATA_VOLUMES = {"kafka-data", "influxdb-data", "influxdb-config", "prometheus-data", "grafana-data",
                "spark-checkpoints", "alertmanager-data", "node-exporter-textfile"}
# The uid each container reads its secrets as: InfluxDB's entrypoint drops to `influxdb` (1000), the
# Spark jobs run as the image's `spark` (185), Grafana and Kafka as the catalog's user.
SECRET_READERS = {"influxdb": "1000", "grafana": catalog.GRAFANA.user, "spark": "185", "kafka": "1000"}
# Each job's Kafka password, which the Spark container reads beside the broker.
JOB_KAFKA_PASSWORDS = {"kafka-password-hydro-producer", "kafka-password-hydro-consumer"}
SECRET_VOLUMES = {f"secrets-{service}" for service in SECRET_READERS}
GENERATE_SECRETS = PROJECT_DIR / "infra" / "render" / "templates" / "local" / "generate-secrets.sh"
LOCK = PROJECT_DIR / "infra" / "release" / "connector-jars.lock"
AGENT_LOCK = PROJECT_DIR / "infra" / "release" / "broker-agent.lock"
CONFIG_VOLUMES = {"prometheus-config", "grafana-provisioning", "alertmanager-config"}
# What a person on the host reaches: container port -> service.
PUBLISHED = {"grafana": {3000}, "influxdb": {8086}, "prometheus": {9090}, "alertmanager": {9093},
             "kafka": {9094}}


@pytest.fixture(scope="module")
def plan(plans):
    return plans["local"]


def unwrap(value):
    """The plain value of deserialized inputs (a list holding a secret arrives wrapped as secret)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def leaves(value, path=""):
    """(dotted path, leaf) pairs, in the secret_paths notation."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, f"{path}[{index}]")
    else:
        yield path, value


def inputs(resource):
    return unwrap(resource.inputs)


def containers(plan):
    """Long-running containers by their Docker name (the one-shot topic and secret writers excluded)."""
    found = {}
    for resource in plan.of_type(CONTAINER):
        values = inputs(resource)
        if values.get("mustRun", True):
            found[values["name"]] = (resource, values)
    return found


def service_container(plan, service):
    return containers(plan)[f"hydrostream-{service.name}"]


def env_of(values):
    return dict(entry.split("=", 1) for entry in values.get("envs", []))


def uploads_of(values):
    return {u["file"]: u for u in values.get("uploads", [])}


def one_shot(plan, name):
    """A container that runs once (`pulumi up` waits for its end), by its Docker name."""
    (resource,) = [r for r in plan.of_type(CONTAINER) if inputs(r)["name"] == f"hydrostream-{name}"]
    values = inputs(resource)
    assert values["mustRun"] is False and values["attach"] is True and values["restart"] == "no"
    return resource, values


def secret_specs(plan):
    """(service, uid, secret) for every copy the secrets container writes."""
    _, values = one_shot(plan, "secrets")
    directory, length, *specs = values["command"]
    assert directory == catalog.SECRETS_DIR and int(length) >= 32
    return {tuple(spec.split(":")) for spec in specs}


def token_specs(plan):
    """(service, uid, secret, access, description) for every scoped token the tokens container writes."""
    _, values = one_shot(plan, "influxdb-tokens")
    directory, operator, user, org, bucket, *specs = values["command"]
    assert directory == catalog.SECRETS_DIR
    assert operator == f"{catalog.SECRETS_DIR}/influxdb/{catalog.INFLUXDB_TOKEN}"
    assert (user, org, bucket) == ("admin", plan.settings.influxdb.org, plan.settings.influxdb.bucket)
    return {tuple(spec.split(":")) for spec in specs}


def secrets_mount(values):
    """The volume a container mounts at the catalog's SECRETS_DIR, as (volume, read-only)."""
    found = [(v["volumeName"], v.get("readOnly", False)) for v in values.get("volumes", [])
             if v["containerPath"] == catalog.SECRETS_DIR]
    return found[0] if found else None


@pytest.mark.parametrize("service", catalog.SERVICES.values(), ids=lambda s: s.name)
def test_every_catalog_service_runs_its_pinned_image(plan, service):
    resource, values = service_container(plan, service)
    images = [r for r in plan.of_type(IMAGE) if inputs(r)["name"] == service.reference]
    assert len(images) == 1, f"one RemoteImage pulls {service.reference}"
    image = images[0]
    assert inputs(image)["keepLocally"] is True
    assert image.urn in resource.dependencies
    # HydroMocks gives a pulled image the id sha256(<image name>).
    assert values["image"] == "sha256:" + hashlib.sha256(service.reference.encode()).hexdigest()
    assert values["restart"] == "unless-stopped"
    assert resource.delete_before_replace, "a fixed container name cannot exist twice during a replace"


def test_nothing_but_the_catalog_runs(plan):
    assert set(containers(plan)) == {f"hydrostream-{name}" for name in catalog.SERVICES}
    pulled = {inputs(r)["name"] for r in plan.of_type(IMAGE)}
    assert pulled == {s.reference for s in catalog.SERVICES.values()}


@pytest.mark.parametrize("service", catalog.SERVICES.values(), ids=lambda s: s.name)
def test_every_service_has_the_catalog_health_check(plan, service):
    _, values = service_container(plan, service)
    check = values["healthcheck"]
    expected = service.health_check
    assert check["tests"] == list(expected.command)
    assert (check["interval"], check["timeout"], check["startPeriod"], check["retries"]) == (
        f"{expected.interval_s}s", f"{expected.timeout_s}s", f"{expected.start_period_s}s", expected.retries)


def test_the_kafka_health_check_starts_no_jvm_and_fails_when_nothing_listens(plan):
    _, values = service_container(plan, catalog.KAFKA)
    kind, *command = values["healthcheck"]["tests"]
    assert kind == "CMD"
    # Every Kafka CLI is a JVM that would inherit the broker's KAFKA_HEAP_OPTS every interval.
    assert not any(re.search(r"kafka-[a-z-]+\.sh|\bjava\b", word) for word in command), command
    port = catalog.KAFKA.port("kafka")
    free = free_port()
    moved = [word.replace(f"/{port}", f"/{free}") for word in command]
    assert moved != command, "the probe does not name the broker's port"
    for listening in (True, False):
        with socket.socket() as server:
            server.bind((LOOPBACK, free))
            if listening:
                server.listen()
            result = subprocess.run(moved, capture_output=True, timeout=30)
        assert (result.returncode == 0) == listening, (listening, result.stderr)


@pytest.mark.parametrize("service", catalog.SERVICES.values(), ids=lambda s: s.name)
def test_every_service_mounts_its_catalog_volumes_as_named_volumes(plan, service):
    _, values = service_container(plan, service)
    mounted = {v["containerPath"]: v["volumeName"] for v in values.get("volumes", [])
               if v["containerPath"] != catalog.SECRETS_DIR}
    assert set(mounted) == {v.container_path for v in service.volumes}
    declared = {inputs(r)["name"]: r for r in plan.of_type(VOLUME)}
    for volume in service.volumes:
        name = mounted[volume.container_path]
        assert name in declared, f"{name} is not a volume of the stack"
        assert name.startswith(f"hydrostream-{volume.name}")
        assert declared[name].urn in service_container(plan, service)[0].dependencies


def test_data_and_secrets_volumes_survive_destroy_and_config_volumes_do_not(plan):
    retained = {inputs(r)["name"] for r in plan.of_type(VOLUME) if r.retain_on_delete}
    assert retained == {f"hydrostream-{name}" for name in DATA_VOLUMES | SECRET_VOLUMES}
    catalog_volumes = {v.name for s in catalog.SERVICES.values() for v in s.volumes}
    assert catalog_volumes == DATA_VOLUMES | CONFIG_VOLUMES, "classify a new catalog volume here"
    for resource in plan.of_type(VOLUME):
        assert not resource.protect


def test_the_volume_removal_command_selects_exactly_the_retained_volumes(plan):
    command = plan.outputs["remove_data_volumes"]
    assert re.fullmatch(r"docker volume rm \$\(docker volume ls --quiet( --filter label=[^\s)]+)+\)", command)
    wanted = dict(f.split("=", 1) for f in re.findall(r"--filter label=([^\s)]+)", command))
    selected = set()
    for resource in plan.of_type(VOLUME):
        labels = {item["label"]: item["value"] for item in inputs(resource).get("labels", [])}
        if wanted.items() <= labels.items():
            selected.add(inputs(resource)["name"])
    assert selected == {f"hydrostream-{name}" for name in DATA_VOLUMES | SECRET_VOLUMES}
    assert sorted(plan.outputs["data_volumes"] + plan.outputs["secret_volumes"]) == sorted(selected)
    assert ("env", "local") in wanted.items(), "another stack's volumes are not this one's to remove"


def test_published_ports_are_on_loopback_only(plan):
    published = {}
    for resource in plan.of_type(CONTAINER):
        values = inputs(resource)
        assert not values.get("publishAllPorts"), resource.name
        assert values.get("networkMode") in (None, "bridge", "none"), resource.name
        for port in values.get("ports", []):
            assert port.get("ip") == LOOPBACK, f"{resource.name} publishes {port} beyond the loopback address"
            assert port["external"] == port["internal"]
            published.setdefault(values["name"], set()).add(port["internal"])
    assert published == {f"hydrostream-{name}": ports for name, ports in PUBLISHED.items()}


def test_every_container_is_on_the_one_stack_network_but_the_secrets_writer_on_none(plan):
    networks = {inputs(r)["name"] for r in plan.of_type("docker:index/network:Network")}
    assert networks == {"hydrostream"}
    _, writer = one_shot(plan, "secrets")
    assert writer["networkMode"] == "none" and not writer.get("networksAdvanced")
    for resource in plan.of_type(CONTAINER):
        if inputs(resource)["name"] != writer["name"]:
            assert [n["name"] for n in inputs(resource)["networksAdvanced"]] == ["hydrostream"], resource.name


def test_no_secret_passes_through_pulumi(plan):
    assert not [r for r in plan.resources if r.type.startswith("random:")], "values are generated by Docker"
    for resource in plan.resources:
        where = f"{resource.type} {resource.name}"
        assert not resource.secret_paths, f"{where}: secret inputs {sorted(resource.secret_paths)}"
        values = inputs(resource)
        for upload in values.get("uploads", []):
            assert not upload["file"].startswith(catalog.SECRETS_DIR), f"{where} uploads {upload['file']}"
        for key, value in env_of(values).items():
            if re.search("PASSWORD|TOKEN|SECRET", key):
                assert key.endswith("_FILE") and value.startswith(catalog.SECRETS_DIR + "/"), (where, key)
    assert plan.secret_outputs == frozenset()
    assert not any("password" in key and "command" not in key for key in plan.outputs)


def test_the_secrets_are_written_once_before_any_container_that_reads_them(plan):
    writer, values = one_shot(plan, "secrets")
    assert values["user"] == "0" and values["memory"] >= 64
    script = uploads_of(values)[values["entrypoints"][-1]]
    assert values["entrypoints"][0] == "/bin/bash" and script["content"] == GENERATE_SECRETS.read_text()
    expected = {(s.name, SECRET_READERS[s.name], f.secret) for s in catalog.SERVICES.values()
                for f in s.secret_files if f.secret in catalog.GENERATED_SECRETS}
    expected |= {("spark", "185", secret) for secret in JOB_KAFKA_PASSWORDS}
    assert secret_specs(plan) == expected
    assert {secret for _, _, secret in expected} == set(catalog.GENERATED_SECRETS)
    # Each reader's volume is written at SECRETS_DIR/<service> here, read at SECRETS_DIR there.
    written = {v["containerPath"]: v["volumeName"] for v in values["volumes"]}
    assert written == {f"{catalog.SECRETS_DIR}/{name}": f"hydrostream-secrets-{name}"
                       for name in SECRET_READERS}
    for name in SECRET_READERS:
        resource, reader = containers(plan)[f"hydrostream-{name}"]
        assert secrets_mount(reader) == (f"hydrostream-secrets-{name}", True), name
        assert writer.urn in resource.dependencies, f"{name} must start after the secrets are written"
    for _, reader in containers(plan).values():
        if reader["name"].removeprefix("hydrostream-") not in SECRET_READERS:
            assert secrets_mount(reader) is None, reader["name"]


# Optional secret files are the alert receivers', which the local stack has none of.
WITH_SECRETS = [s for s in catalog.SERVICES.values() if any(not f.optional for f in s.secret_files)]


def test_the_local_alertmanager_mounts_no_receiver_secret(plan):
    _, values = service_container(plan, catalog.ALERTMANAGER)
    assert all(v["containerPath"] != catalog.SECRETS_DIR for v in values.get("volumes", []))
    assert catalog.ALERTMANAGER.name not in SECRET_READERS


@pytest.mark.parametrize("service", WITH_SECRETS, ids=lambda s: s.name)
def test_catalog_secrets_are_files_of_the_service_secrets_volume(plan, service):
    _, values = service_container(plan, service)
    env = env_of(values)
    specs = secret_specs(plan)
    for secret_file in service.secret_files:
        # The script writes <volume>/<secret>; the volume is mounted at SECRETS_DIR.
        assert secret_file.container_path == f"{catalog.SECRETS_DIR}/{secret_file.secret}"
        scoped = {spec[:3] for spec in token_specs(plan)}
        assert (service.name, SECRET_READERS[service.name], secret_file.secret) in (
            specs if secret_file.secret in catalog.GENERATED_SECRETS else scoped)
        if secret_file.env:
            assert env[secret_file.env] == secret_file.container_path


def test_grafana_reads_its_admin_password_from_a_file_and_the_stack_says_how_to_read_it(plan):
    _, values = service_container(plan, catalog.GRAFANA)
    env = env_of(values)
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    path = env["GF_SECURITY_ADMIN_PASSWORD__FILE"]
    assert path == f"{catalog.SECRETS_DIR}/{catalog.GRAFANA_ADMIN_PASSWORD}"
    assert (catalog.GRAFANA.name, catalog.GRAFANA.user, catalog.GRAFANA_ADMIN_PASSWORD) in secret_specs(plan)
    # `docker exec` runs as the container's user, the one the file belongs to.
    assert shlex.split(plan.outputs["grafana_admin_password_command"]) == [
        "docker", "exec", "hydrostream-grafana", "cat", path]


def test_influxdb_is_set_up_with_the_stack_settings(plan):
    _, values = service_container(plan, catalog.INFLUXDB)
    env = env_of(values)
    influx = plan.settings.influxdb
    assert env["DOCKER_INFLUXDB_INIT_ORG"] == influx.org
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == influx.bucket
    assert env["DOCKER_INFLUXDB_INIT_RETENTION"] == f"{influx.retention_days}d"
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"


def test_kafka_advertises_its_container_name_in_the_network_and_loopback_to_the_host(plan):
    _, values = service_container(plan, catalog.KAFKA)
    env = env_of(values)
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "hydrostream-kafka:9092"
    host_listener = [address for name, address in advertised.items() if name != "PLAINTEXT"]
    assert host_listener == [plan.outputs["kafka_bootstrap"]]
    assert host_listener[0].startswith(f"{LOOPBACK}:")
    # A quorum of itself, as a one-broker stack's VM: found through the bootstrap, never listed statically.
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    assert env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] == "localhost:9093"
    for key, value in catalog.KAFKA.env.items():
        assert env[key].startswith(value), f"{key} departs from the catalog"
    assert "CONTROLLER" not in env["KAFKA_ADVERTISED_LISTENERS"]
    # Every listener authenticates, the host's too.
    assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == (
        "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT")


def test_kafka_starts_as_a_broker_vm_does_with_the_admin_login_from_its_secrets(plan):
    _, values = service_container(plan, catalog.KAFKA)
    command = values["command"]
    assert command[:2] == ["bash", "/opt/hydrostream/bin/kafka-start.sh"]
    assert command[2].startswith("1@localhost:9093:")
    assert command[3:] == ["hydro-admin", catalog.SECRETS_DIR, "/dev/shm/kafka-sasl"]
    uploads = uploads_of(values)
    templates = PROJECT_DIR / "infra" / "render" / "templates"
    for script in ("kafka-start.sh", "kafka-format.sh", "kafka-sasl-files.sh"):
        assert uploads[f"/opt/hydrostream/bin/{script}"]["content"] == (templates / script).read_text()
    assert secrets_mount(values) == ("hydrostream-secrets-kafka", True)
    users = ("hydro-admin", "hydro-producer", "hydro-consumer")
    assert {spec for spec in secret_specs(plan) if spec[0] == "kafka"} == {
        ("kafka", "1000", f"kafka-password-{user}") for user in users}


def test_kafka_loads_the_locked_metrics_agent_uploaded_with_its_config(plan):
    _, values = service_container(plan, catalog.KAFKA)
    uploads = uploads_of(values)
    # Written out by hand: the agent's folder, its option and the lock's one jar.
    jar = uploads["/opt/kafka-metrics/jmx_prometheus_javaagent.jar"]
    assert hashlib.sha256(Path(jar["source"]).read_bytes()).hexdigest() == jar["sourceHash"]
    assert f"io.prometheus.jmx:jmx_prometheus_javaagent:1.0.1 {jar['sourceHash']}" in AGENT_LOCK.read_text()
    config = uploads["/opt/kafka-metrics/jmx-exporter.yml"]["content"]
    assert config == (PROJECT_DIR / "monitoring" / "kafka" / "jmx-exporter.yml").read_text()
    assert env_of(values)["KAFKA_OPTS"] == ("-javaagent:/opt/kafka-metrics/jmx_prometheus_javaagent.jar=9404:"
                                            "/opt/kafka-metrics/jmx-exporter.yml")
    assert not any(name.startswith("hydrostream-kafka-exporter") for name in containers(plan))


def test_topics_are_created_once_with_the_stack_settings(plan):
    one_shots = {inputs(r)["name"] for r in plan.of_type(CONTAINER) if inputs(r).get("mustRun") is False}
    assert one_shots == {"hydrostream-kafka-topics", "hydrostream-secrets", "hydrostream-influxdb-tokens"}
    _, values = one_shot(plan, "kafka-topics")
    # kafka-setup.sh BOOTSTRAP ADMIN SECRETS_DIR TOPIC... -- ACCESS...
    bootstrap, admin, secrets_dir, *rest = values["command"]
    assert (bootstrap, admin, secrets_dir) == ("hydrostream-kafka:9092", "hydro-admin", catalog.SECRETS_DIR)
    specs, access = rest[:rest.index("--")], rest[rest.index("--") + 1:]
    kafka = plan.settings.kafka
    # One broker: one replica each, one in sync (NAME:PARTITIONS:RETENTION_MS:REPLICATION:MIN_ISR).
    assert specs == [f"{contract.READINGS_TOPIC}:{kafka.partitions}:{kafka.retention_hours * 3_600_000}:1:1",
                     f"{contract.DEAD_LETTER_TOPIC}:{kafka.partitions}:"
                     f"{kafka.dead_letter_retention_hours * 3_600_000}:1:1"]
    assert access == [f"hydro-producer:Write+Describe:{contract.READINGS_TOPIC}",
                      f"hydro-consumer:Read+Describe:{contract.READINGS_TOPIC}"]
    templates = PROJECT_DIR / "infra" / "render" / "templates"
    uploads = uploads_of(values)
    assert uploads[values["entrypoints"][-1]]["content"] == (templates / "kafka-setup.sh").read_text()
    for script in ("kafka-topics.sh", "kafka-access.sh", "kafka-sasl-files.sh"):
        assert uploads[f"/opt/hydrostream/bin/{script}"]["content"] == (templates / script).read_text()
    # The users' passwords from the broker's secrets volume, read-only.
    assert secrets_mount(values) == ("hydrostream-secrets-kafka", True)


def spark_command(plan):
    _, values = service_container(plan, catalog.SPARK)
    command = values["command"]
    assert command.count("--") == 2 and command[1] == "--"
    split = command.index("--", 2)
    return values, command[0], command[2:split], command[split + 1:]


def job_arguments(submit, entry):
    paths = [i for i, arg in enumerate(submit) if arg.endswith(f"/{entry}")]
    assert len(paths) == 1, f"{entry} once in {submit}"
    return submit[:paths[0]], submit[paths[0]], submit[paths[0] + 1:]


def test_spark_runs_the_jobs_with_the_dataproc_command_lines(plan):
    values, _, consumer_submit, producer_submit = spark_command(plan)
    settings = plan.settings
    checkpoints = catalog.SPARK.volumes[0].container_path
    release = build_bundle(JOBS_DIR).digest
    _, _, consumer = job_arguments(consumer_submit, "consumer.py")
    _, _, producer = job_arguments(producer_submit, "producer.py")
    token_file = f"{catalog.SECRETS_DIR}/{catalog.INFLUXDB_WRITE_TOKEN}"
    assert consumer == consumer_args(
        plan.model.jobs.flags, bootstrap_servers="hydrostream-kafka:9092", influx_url="http://hydrostream-influxdb:8086",
        influx_org=settings.influxdb.org, influx_bucket=settings.influxdb.bucket,
        token=TokenSource(file=token_file), checkpoint_root=f"{checkpoints}/{release}",
        handover_root=checkpoints,
        kafka_login=kafka_login("hydro-consumer",
                                file=f"{catalog.SECRETS_DIR}/kafka-password-hydro-consumer"))
    assert producer == producer_args(
        plan.model.jobs.flags, bootstrap_servers="hydrostream-kafka:9092",
        checkpoint_root=f"{checkpoints}/{release}",
        kafka_login=kafka_login("hydro-producer",
                                file=f"{catalog.SECRETS_DIR}/kafka-password-hydro-producer"))
    # The jobs' own parsers accept them, and what they parse lands on the checkpoint volume.
    parsed = cli.parse_consumer_args(consumer)
    assert parsed.influx_token_file == token_file and parsed.influx_token_secret is None
    # The jobs hold the write token only, written by the tokens container, never the operator token.
    assert ("spark", SECRET_READERS["spark"], catalog.INFLUXDB_WRITE_TOKEN, "write",
            "hydrostream-consumer-write") in token_specs(plan)
    # ... and each job's Kafka password (generated beside the broker's copies).
    assert {spec for spec in secret_specs(plan) if spec[0] == "spark"} == {
        ("spark", "185", secret) for secret in JOB_KAFKA_PASSWORDS}
    assert (parsed.kafka_user, parsed.kafka_password_file) == (
        "hydro-consumer", f"{catalog.SECRETS_DIR}/kafka-password-hydro-consumer")
    assert secrets_mount(values) == ("hydrostream-secrets-spark", True)
    # Each release in its own folder of the volume, handing over from the one that ran before.
    assert parsed.checkpoint_location == f"{checkpoints}/{release}/consumer"
    assert parsed.handover_from == checkpoints
    assert parsed.dead_letter_path.startswith(f"{checkpoints}/{release}/")
    assert cli.parse_producer_args(producer).checkpoint_location.startswith(f"{checkpoints}/{release}/")


def test_spark_submits_in_local_mode_with_the_connector_of_the_image_table(plan):
    values, _, consumer_submit, producer_submit = spark_command(plan)
    uploads = uploads_of(values)
    for submit, entry in ((consumer_submit, "consumer.py"), (producer_submit, "producer.py")):
        options, path, _ = job_arguments(submit, entry)
        pairs = dict(zip(options[::2], options[1::2], strict=True))
        assert pairs["--master"] == "local[*]"
        confs = dict(options[i + 1].split("=", 1) for i, option in enumerate(options) if option == "--conf")
        # The connector comes from the release's locked jars, uploaded into the container: a first start
        # downloads nothing from Maven Central.
        assert not any(key.startswith("spark.jars.") for key in confs)
        jars = pairs["--jars"].split(",")
        assert [Path(jar).name for jar in jars] == [
            f"spark-sql-kafka-0-10_{catalog.DATAPROC_IMAGE.scala}-{catalog.DATAPROC_IMAGE.spark}.jar",
            f"spark-token-provider-kafka-0-10_{catalog.DATAPROC_IMAGE.scala}-{catalog.DATAPROC_IMAGE.spark}.jar",
            "kafka-clients-3.4.1.jar", "commons-pool2-2.11.1.jar"]
        for jar in jars:
            source = Path(uploads[jar]["source"])
            assert hashlib.sha256(source.read_bytes()).hexdigest() == uploads[jar]["sourceHash"]
            assert uploads[jar]["sourceHash"] in LOCK.read_text()
            assert "content" not in uploads[jar] and "contentBase64" not in uploads[jar]
        package, *wheels = pairs["--py-files"].split(",")
        assert package in uploads and package.endswith("/hydrostream_jobs.zip")
        # prometheus-client, which the Spark image lacks, as the release's locked wheel: no PyPI at start.
        assert [Path(wheel).name for wheel in wheels] == [f"prometheus_client-{pinned_version()}.zip"]
        for wheel in wheels:
            source = Path(uploads[wheel]["source"])
            assert hashlib.sha256(source.read_bytes()).hexdigest() == uploads[wheel]["sourceHash"]
            assert uploads[wheel]["sourceHash"] in WHEEL_LOCK.read_text()
        assert uploads[path]["content"] == (PROJECT_DIR / "jobs" / entry).read_text()
    assert catalog.SPARK.image.split(":")[1].startswith(catalog.DATAPROC_IMAGE.spark + "-")


def pinned_version() -> str:
    lock = (PROJECT_DIR / "requirements.lock").read_text()
    return re.search(r"^prometheus-client==(\S+)", lock, re.MULTILINE).group(1)


def test_spark_runs_the_entry_script_without_a_package_install(plan):
    values, entry, _, _ = spark_command(plan)
    script = uploads_of(values)[entry]
    assert script["content"] == (PROJECT_DIR / "infra/render/templates/local/spark-jobs.sh").read_text()
    assert script["permissions"] == "0755"
    assert "pip install" not in script["content"] and not [key for key in env_of(values) if "PIP" in key]


def test_the_shipped_wheel_supports_the_python_of_the_spark_image():
    name, version = "prometheus-client", pinned_version()
    # The venv is installed from the same requirements lock, so its metadata is that of the shipped wheel.
    assert importlib.metadata.version(name) == version
    requires = SpecifierSet(importlib.metadata.metadata(name)["Requires-Python"] or "")
    assert catalog.SPARK_IMAGE_PYTHON in requires, f"{name}=={version} needs Python {requires}"


def test_start_order_follows_health(plan):
    by_name = {values["name"]: resource for resource, values in containers(plan).values()}
    topics, _ = one_shot(plan, "kafka-topics")

    def depends(name, *on):
        urns = set(by_name[f"hydrostream-{name}"].dependencies)
        for other in on:
            target = topics if other == "kafka-topics" else by_name[f"hydrostream-{other}"]
            assert target.urn in urns, f"{name} must start after {other}"

    depends("spark", "kafka", "influxdb", "kafka-topics")
    depends("grafana", "influxdb", "prometheus")
    assert by_name["hydrostream-kafka"].urn in topics.dependencies
    for gate in (catalog.KAFKA, catalog.INFLUXDB):
        _, values = service_container(plan, gate)
        check = gate.health_check
        assert values["wait"] is True, f"`pulumi up` must wait for {gate.name} to be healthy"
        assert values["waitTimeout"] >= check.start_period_s + check.retries * check.interval_s


def test_every_container_has_a_memory_limit_its_heaps_fit_in(plan):
    for resource in plan.of_type(CONTAINER):
        assert inputs(resource).get("memory", 0) >= 64, f"{resource.name} has no memory limit"
    _, kafka = service_container(plan, catalog.KAFKA)
    heap = re.fullmatch(r"-Xms(\d+)m -Xmx(\d+)m", env_of(kafka)["KAFKA_HEAP_OPTS"])
    assert heap and heap.group(1) == heap.group(2) and int(heap.group(2)) <= kafka["memory"] * 3 // 4
    _, influxdb = service_container(plan, catalog.INFLUXDB)
    assert int(env_of(influxdb)["GOMEMLIMIT"].removesuffix("MiB")) < influxdb["memory"]
    spark, _, consumer_submit, producer_submit = spark_command(plan)
    options = [job_arguments(consumer_submit, "consumer.py")[0],
               job_arguments(producer_submit, "producer.py")[0]]
    drivers = [dict(zip(o[::2], o[1::2], strict=True))["--driver-memory"] for o in options]
    assert sum(int(d.removesuffix("m")) for d in drivers) * 2 <= spark["memory"]


def test_pulumi_up_returns_once_grafana_answers(plan):
    _, values = service_container(plan, catalog.GRAFANA)
    assert values["wait"] is True and values["waitTimeout"] >= catalog.GRAFANA.health_check.start_period_s


def test_node_exporter_reads_the_host_read_only_where_its_catalog_command_looks(plan):
    _, values = service_container(plan, catalog.NODE_EXPORTER)
    rootfs = next(arg.split("=", 1)[1] for arg in catalog.NODE_EXPORTER.command
                  if arg.startswith("--path.rootfs="))
    assert [(m["type"], m["source"], m["target"], m["readOnly"]) for m in values["mounts"]] == [
        ("bind", "/", rootfs, True)]
    # Docker's default propagation: Docker Desktop refuses `rslave` (the VMs use it).
    assert not any(m.get("bindOptions") for m in values["mounts"])
    assert values["pidMode"] == "host"
    others = [v for _, v in containers(plan).values() if v["name"] != "hydrostream-node-exporter"]
    assert not any(v.get("mounts") or v.get("pidMode") or v.get("privileged") for v in others)


def test_prometheus_scrapes_the_containers_by_name(plan):
    _, values = service_container(plan, catalog.PROMETHEUS)
    uploads = uploads_of(values)
    config = yaml.safe_load(uploads["/etc/prometheus/prometheus.yml"]["content"])
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert targets["hydro-producer"] == [f"hydrostream-spark:{contract.PRODUCER_METRICS_PORT}"]
    assert targets["hydro-consumer"] == [f"hydrostream-spark:{contract.CONSUMER_METRICS_PORT}"]
    assert targets["kafka"] == ["hydrostream-kafka:9404"]
    assert targets["node-exporter"] == ["hydrostream-node-exporter:9100"]
    # The services' own /metrics, by name on the one stack network (the test above): nothing to publish.
    assert targets["influxdb"] == ["hydrostream-influxdb:8086"]
    assert targets["alertmanager"] == ["hydrostream-alertmanager:9093"]
    assert targets["grafana"] == ["hydrostream-grafana:3000"]
    rules = sorted(p.name for p in (PROJECT_DIR / "monitoring" / "prometheus" / "rules").glob("*.yml"))
    assert rules and all(f"/etc/prometheus/rules/{name}" in uploads for name in rules)


def test_grafana_is_provisioned_with_the_stack_data_sources_and_the_dashboards(plan):
    _, values = service_container(plan, catalog.GRAFANA)
    uploads = uploads_of(values)
    provisioning = "/etc/grafana/provisioning"
    sources = yaml.safe_load(uploads[f"{provisioning}/datasources/datasources.yaml"]["content"])
    by_type = {source["type"]: source for source in sources["datasources"]}
    assert by_type["influxdb"]["url"] == "http://hydrostream-influxdb:8086"
    assert by_type["influxdb"]["jsonData"]["organization"] == plan.settings.influxdb.org
    assert by_type["prometheus"]["url"] == "http://hydrostream-prometheus:9090"
    # The token is read from Grafana's copy in its secrets volume.
    token_file = re.fullmatch(r"\$__file\{(.+)\}", by_type["influxdb"]["secureJsonData"]["token"]).group(1)
    assert token_file == f"{catalog.SECRETS_DIR}/{catalog.INFLUXDB_READ_TOKEN}"
    assert (catalog.GRAFANA.name, catalog.GRAFANA.user, catalog.INFLUXDB_READ_TOKEN, "read",
            "hydrostream-grafana-read") in token_specs(plan)
    assert (catalog.GRAFANA.name, catalog.GRAFANA.user, catalog.INFLUXDB_TOKEN) not in secret_specs(plan)
    provider = yaml.safe_load(uploads[f"{provisioning}/dashboards/dashboards.yaml"]["content"])
    dashboards_path = provider["providers"][0]["options"]["path"]
    dashboards = sorted((PROJECT_DIR / "monitoring" / "grafana" / "dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        assert uploads[f"{dashboards_path}/{path.name}"]["content"] == path.read_text()


def test_stack_outputs_name_the_urls_and_volumes(plan):
    outputs = plan.outputs
    assert outputs["grafana_url"] == "http://127.0.0.1:3000"
    assert outputs["influxdb_url"] == "http://127.0.0.1:8086"
    assert outputs["prometheus_url"] == "http://127.0.0.1:9090"
    assert outputs["kafka_bootstrap"] == "127.0.0.1:9094"
    assert outputs["kafka_bootstrap_in_network"] == "hydrostream-kafka:9092"
    assert outputs["containers"] == {name: f"hydrostream-{name}" for name in catalog.SERVICES}
    assert outputs["secret_volumes"] == sorted(f"hydrostream-{name}" for name in SECRET_VOLUMES)


def test_a_one_shot_container_that_failed_stops_the_deployment_naming_it():
    check_one_shot_exit(0, "hydrostream-secrets", "no secrets")
    check_one_shot_exit(None, "hydrostream-secrets", "no secrets")  # a preview: not run yet
    with pytest.raises(pulumi.RunError, match=r"hydrostream-secrets exited with 1: no secrets \(`docker"):
        check_one_shot_exit(1, "hydrostream-secrets", "no secrets")


def test_config_volume_names_follow_their_content():
    base = (Upload("/etc/a.yml", content="x: 1\n"), Upload("/etc/b.yml", content="y: 2\n"))
    assert uploads_digest(base) == uploads_digest(tuple(base))
    assert uploads_digest(base) != uploads_digest((base[0], Upload("/etc/b.yml", content="y: 3\n")))
    assert uploads_digest(base) != uploads_digest((base[0], Upload("/etc/c.yml", content="y: 2\n")))
    with pytest.raises(ValueError, match="literal"):
        uploads_digest((Upload("/etc/b.yml", content=pulumi.Output.from_input("y: 2\n")),))


SPARK_JOBS_SCRIPT = PROJECT_DIR / "infra" / "render" / "templates" / "local" / "spark-jobs.sh"
FAKE_SUBMIT = """#!/bin/bash
# Records its arguments; the consumer serves a metrics file, the producer fails at once.
job=$(basename "$(printf '%s\\n' "$@" | grep -E '(consumer|producer)[.]py$')" .py)
printf '%s\\n' "$@" > "$FAKE_LOG/$job.args"
if [[ $job == consumer ]]; then
  exec python3 -m http.server --bind 127.0.0.1 --directory "$FAKE_LOG/serve" "$FAKE_PORT"
fi
exit 3
"""


def test_spark_entry_script_starts_the_producer_after_the_consumer_and_ends_with_a_job(tmp_path):
    port = free_port()
    bin_dir = tmp_path / "bin"
    (tmp_path / "spark" / "bin").mkdir(parents=True)
    bin_dir.mkdir()
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "metrics").write_text("up 1\n")
    (bin_dir / "gosu").write_text('#!/bin/bash\nshift\nexec "$@"\n')
    (tmp_path / "spark" / "bin" / "spark-submit").write_text(FAKE_SUBMIT)
    (bin_dir / "python3").symlink_to(sys.executable)
    for tool in (bin_dir / "gosu", tmp_path / "spark" / "bin" / "spark-submit"):
        tool.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "SPARK_HOME": str(tmp_path / "spark"),
        "FAKE_LOG": str(tmp_path), "FAKE_PORT": str(port),
        "HYDRO_SPARK_USER": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
        "HYDRO_OWNED_DIRS": f"{tmp_path}/checkpoints {tmp_path}/cache",
        "HYDRO_CONSUMER_READY_URL": f"http://127.0.0.1:{port}/metrics",
    }
    consumer = ["--master", "local[*]", "/jobs/consumer.py", "--source", "kafka", "--window", "5m"]
    producer = ["--master", "local[*]", "/jobs/producer.py", "--rate", "7"]
    script = subprocess.Popen(["bash", str(SPARK_JOBS_SCRIPT), "--", *consumer, "--", *producer],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        _, stderr = script.communicate(timeout=60)
    finally:
        if script.poll() is None or subprocess.run(["pgrep", "-s", str(script.pid)], capture_output=True,
                                                   check=False).returncode == 0:
            os.killpg(script.pid, signal.SIGKILL)  # what the script failed to stop
    assert script.returncode == 3, stderr
    assert (tmp_path / "consumer.args").read_text().splitlines() == consumer
    assert (tmp_path / "producer.args").read_text().splitlines() == producer
    assert (tmp_path / "checkpoints").is_dir() and (tmp_path / "cache").is_dir()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the consumer outlived the script"


def test_spark_entry_script_refuses_arguments_without_both_jobs():
    result = subprocess.run(["bash", str(SPARK_JOBS_SCRIPT), "--", "consumer.py"], capture_output=True,
                            text=True, check=False,
                            env={"HYDRO_SPARK_USER": "x", "HYDRO_OWNED_DIRS": "/x",
                                 "HYDRO_CONSUMER_READY_URL": "http://x",
                                 "SPARK_HOME": "/x", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "usage:" in result.stderr


def generate_secrets(directory, specs, *, xtrace=False, length=40):
    """Run the secrets script here, as the container would; chown is recorded when not root."""
    stubs = directory.parent / "bin"
    stubs.mkdir(exist_ok=True)
    env = {**os.environ, "CHOWN_LOG": str(directory.parent / "chown.log")}
    if os.geteuid() != 0:
        (stubs / "chown").write_text('#!/bin/bash\necho "$1 $2" >>"$CHOWN_LOG"\n')
        (stubs / "chown").chmod(0o755)
        env["PATH"] = f"{stubs}:{env['PATH']}"
    return subprocess.run(["bash", *(["-x"] if xtrace else []), str(GENERATE_SECRETS), str(directory),
                           str(length), *(":".join(spec) for spec in sorted(specs))],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def owner(path, log):
    """The uid that owns `path`, or that the stub chown last gave it (or its temporary twin, `path.*`)."""
    if os.geteuid() == 0:
        return str(path.stat().st_uid)
    calls = [line.split(" ") for line in log.read_text().splitlines()]
    return [uid for uid, target in calls if target == str(path) or target.startswith(f"{path}.")][-1]


def copies(directory, specs):
    """secret -> {service: value} as written."""
    found = {}
    for service, _, secret in specs:
        found.setdefault(secret, {})[service] = (directory / service / secret).read_text()
    return found


# A second reader of the operator token: no real service has one any more, but the script still
# copies a secret to every reader that names it.
EXTRA_READER = ("extra-reader", "4242", catalog.INFLUXDB_TOKEN)


def test_secrets_are_generated_once_copied_to_each_reader_and_never_shown(plan, tmp_path):
    specs = secret_specs(plan) | {EXTRA_READER}
    directory = tmp_path / "secrets"
    # bash -x prints every command and expansion: no value may appear even there.
    first = generate_secrets(directory, specs, xtrace=True)
    assert first.returncode == 0, first.stderr
    written = copies(directory, specs)
    values = {secret: set(by_service.values()) for secret, by_service in written.items()}
    assert all(len(v) == 1 for v in values.values()), "each reader holds the same value of a secret"
    distinct = {v.pop() for v in values.values()}
    assert len(distinct) == len(catalog.GENERATED_SECRETS)
    for value in distinct:
        assert re.fullmatch(r"[A-Za-z0-9]{40}", value)
        assert value not in first.stdout + first.stderr
    for service, uid, secret in specs:
        path = directory / service / secret
        log = tmp_path / "chown.log"
        assert stat.S_IMODE(path.stat().st_mode) == 0o400 and owner(path, log) == uid, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and owner(path.parent, log) == uid
    assert "generated" in first.stdout

    # The next `up` (after a destroy that kept the volumes) keeps them; a lost copy comes back.
    (directory / "extra-reader" / catalog.INFLUXDB_TOKEN).unlink()
    second = generate_secrets(directory, specs)
    assert second.returncode == 0, second.stderr
    assert copies(directory, specs) == written
    assert "generated" not in second.stdout and "kept" in second.stdout
    assert not any(value in second.stdout + second.stderr for value in distinct)
    assert not [p for p in directory.rglob("*.*")], "a temporary file was left behind"


def test_secrets_whose_copies_differ_are_left_alone_and_not_shown(plan, tmp_path):
    specs = secret_specs(plan) | {EXTRA_READER}
    directory = tmp_path / "secrets"
    assert generate_secrets(directory, specs).returncode == 0
    before = copies(directory, specs)
    tampered = directory / "extra-reader" / catalog.INFLUXDB_TOKEN
    tampered.chmod(0o600)
    tampered.write_text("x" * 40)
    result = generate_secrets(directory, specs)
    assert result.returncode == 1
    assert str(tampered) in result.stderr and "differ" in result.stderr
    assert before[catalog.INFLUXDB_TOKEN]["influxdb"] not in result.stdout + result.stderr
    after = copies(directory, specs)
    assert after[catalog.INFLUXDB_TOKEN]["influxdb"] == before[catalog.INFLUXDB_TOKEN]["influxdb"]
    assert after[catalog.INFLUXDB_TOKEN]["extra-reader"] == "x" * 40


@pytest.mark.parametrize("arguments", [[], ["/tmp/x", "40"], ["/tmp/x", "0", "a:1:b"],
                                       ["/tmp/x", "40", "a:b:c"], ["/tmp/x", "40", "../a:1:b"]])
def test_secrets_script_refuses_bad_arguments(arguments):
    result = subprocess.run(["bash", str(GENERATE_SECRETS), *arguments], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr


# --- scoped InfluxDB tokens ------------------------------------------------------------------------

def test_the_scoped_tokens_reach_only_their_one_reader_after_influxdb_is_healthy(plan):
    resource, values = one_shot(plan, "influxdb-tokens")
    influxdb, influxdb_values = containers(plan)["hydrostream-influxdb"]
    assert values["image"] == influxdb_values["image"]
    assert values["envs"] == ["INFLUX_HOST=http://hydrostream-influxdb:8086"]
    assert [n["name"] for n in values["networksAdvanced"]] == ["hydrostream"]
    assert influxdb.urn in resource.dependencies and influxdb_values["wait"] is True
    mounts = {v["containerPath"]: (v["volumeName"], v.get("readOnly", False)) for v in values["volumes"]}
    assert mounts == {f"{catalog.SECRETS_DIR}/influxdb": ("hydrostream-secrets-influxdb", True),
                      f"{catalog.SECRETS_DIR}/grafana": ("hydrostream-secrets-grafana", False),
                      f"{catalog.SECRETS_DIR}/spark": ("hydrostream-secrets-spark", False)}
    assert token_specs(plan) == {
        ("spark", "185", catalog.INFLUXDB_WRITE_TOKEN, "write", "hydrostream-consumer-write"),
        ("grafana", catalog.GRAFANA.user, catalog.INFLUXDB_READ_TOKEN, "read",
         "hydrostream-grafana-read")}
    for reader in ("grafana", "spark"):
        dependent, _ = containers(plan)[f"hydrostream-{reader}"]
        assert resource.urn in dependent.dependencies, f"{reader} must start after its token is written"
    # Only InfluxDB and the tokens container mount the volume that holds the operator token.
    holders = {inputs(r)["name"] for r in plan.of_type(CONTAINER)
               if any(v["volumeName"] == "hydrostream-secrets-influxdb"
                      for v in inputs(r).get("volumes", []))}
    assert holders == {"hydrostream-influxdb", "hydrostream-influxdb-tokens", "hydrostream-secrets"}
    scripts = {u["file"].rsplit("/", 1)[-1]: u["content"] for u in values["uploads"]}
    templates = PROJECT_DIR / "infra" / "render" / "templates"
    assert scripts == {
        "create-scoped-tokens.sh": (templates / "local" / "create-scoped-tokens.sh").read_text(),
        "influxdb-token.sh": (templates / "influxdb-token.sh").read_text()}


def test_the_tokens_script_writes_each_token_for_its_reader_and_never_shows_it(plan, tmp_path):
    from tests.infra.test_cloud_init import OPERATOR_TOKEN, calls, influx_stubs, stub

    stubs = influx_stubs(tmp_path)
    stub(stubs, "chown", "")
    bin_dir = tmp_path / "scripts"
    bin_dir.mkdir()
    for script in ("infra/render/templates/local/create-scoped-tokens.sh",
                   "infra/render/templates/influxdb-token.sh"):
        (bin_dir / Path(script).name).write_text((PROJECT_DIR / script).read_text())
    (tmp_path / "operator").write_text(OPERATOR_TOKEN)
    directory = tmp_path / "secrets"
    specs = sorted(":".join(spec) for spec in token_specs(plan))
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}",
           "STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)}

    def run():
        return subprocess.run(["bash", "-x", str(bin_dir / "create-scoped-tokens.sh"), str(directory),
                               str(tmp_path / "operator"), "admin", "hydro", "hydro", *specs],
                              capture_output=True, text=True, timeout=60, env=env, check=False)

    first = run()
    assert first.returncode == 0, first.stderr
    tokens = {f.name: f.read_text() for f in directory.rglob("influxdb-*-token")}
    assert set(tokens) == {catalog.INFLUXDB_WRITE_TOKEN, catalog.INFLUXDB_READ_TOKEN}
    # The stub's tokens carry their description: each reader got its own.
    assert (directory / "spark" / catalog.INFLUXDB_WRITE_TOKEN).read_text().startswith(
        "tok_hydrostream-consumer-write-")
    assert (directory / "grafana" / catalog.INFLUXDB_READ_TOKEN).read_text().startswith(
        "tok_hydrostream-grafana-read-")
    for path in directory.rglob("influxdb-*-token"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert sorted(c.split(" ")[1] for c in calls(tmp_path / "calls.log", "chown")) == sorted(
        [catalog.GRAFANA.user, "185"])
    second = run()  # the next `up`: the same tokens, none created twice
    assert second.returncode == 0, second.stderr
    assert {f.name: f.read_text() for f in directory.rglob("influxdb-*-token")} == tokens
    creates = [c for c in calls(tmp_path / "calls.log", "influx") if c.startswith("influx auth create")]
    assert len(creates) == 2
    # bash -x shows every command and expansion: the values pass through pipes and files only.
    for output in (first, second):
        for value in (*tokens.values(), OPERATOR_TOKEN):
            assert value not in output.stdout + output.stderr
    assert not [p for p in directory.rglob("*.*")], "a temporary file was left behind"


def test_each_container_reads_the_secrets_its_role_reads_on_gcp_and_no_more():
    readers = {reader.service: set(reader.secrets) for reader in local_stack.secret_readers()}
    assert readers[catalog.SPARK.name] == {catalog.INFLUXDB_WRITE_TOKEN, *JOB_KAFKA_PASSWORDS}
    assert readers[catalog.KAFKA.name] == {"kafka-password-hydro-admin", *JOB_KAFKA_PASSWORDS}
    assert readers[catalog.INFLUXDB.name] == {catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN}
    assert readers[catalog.GRAFANA.name] == {catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN}


def test_a_container_granted_a_secret_its_role_does_not_read_is_refused(monkeypatch):
    narrowed = dataclasses.replace(roles.TSDB, reads=(catalog.INFLUXDB_ADMIN_PASSWORD,))
    monkeypatch.setattr(roles, "ACCOUNTS", tuple(narrowed if r is roles.TSDB else r for r in roles.ACCOUNTS))
    with pytest.raises(ValueError, match=r"influxdb would read \['influxdb-token'\].*role tsdb"):
        local_stack.secret_readers()
