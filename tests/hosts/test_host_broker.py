"""Broker VMs (GCP, every broker of the cluster) or the local Kafka containers: what is particular to
Kafka. The checks every role shares are in test_host_roles.py."""

from __future__ import annotations

import shlex

from host_checks import check_data_disk_mounted
from hydrostream_jobs import contract

from infra import catalog
from infra.render.cloud_init import DEFAULT_DATA_DISK
from infra.services import kafka as kafka_service

ROLE = catalog.BROKER


def test_broker_runs_kafka(role):
    assert catalog.KAFKA.name in {s.name for s in role.services()}


def kafka_tool(role, tool: str, *args: str, login: str | None = "admin.properties"):
    """A Kafka tool run in the broker's container against its client listener, logged in with one of the
    admin's files kafka-start.sh wrote (None: without logging in)."""
    kafka = role.hosts.containers[catalog.KAFKA.name]
    words = [f"/opt/kafka/bin/{tool}", "--bootstrap-server", f"localhost:{catalog.KAFKA.port('kafka')}",
             *(["--command-config", f"{kafka_service.SASL_DIR}/{login}"] if login else []), *args]
    return role.engine.run(f"docker exec --env KAFKA_OPTS= --env KAFKA_HEAP_OPTS=-Xmx256m "
                           f"{shlex.quote(kafka)} {shlex.join(words)}")


def test_topics_exist(role):
    listed = kafka_tool(role, "kafka-topics.sh", "--list")
    assert listed.rc == 0, listed.stderr
    assert {contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC} <= set(listed.stdout.split())


def test_kafka_refuses_a_client_that_does_not_log_in_and_the_jobs_have_their_acls(role):
    anonymous = kafka_tool(role, "kafka-topics.sh", "--list", login=None)
    assert contract.READINGS_TOPIC not in anonymous.stdout
    acls = kafka_tool(role, "kafka-acls.sh", "--list", "--topic", contract.READINGS_TOPIC)
    assert acls.rc == 0, acls.stderr
    for grant in kafka_service.access():
        for operation in grant.operations:
            assert f"principal=User:{grant.user}, host=*, operation={operation.upper()}" in acls.stdout, grant


def test_kafka_log_lives_on_the_data_disk(role):
    if not role.on_gcp:
        return check_data_disk_mounted(role)
    data = role.node.file(f"{DEFAULT_DATA_DISK.mount_path}/kafka-data")
    assert data.is_directory
    assert data.uid == int(catalog.KAFKA.user or 0)
