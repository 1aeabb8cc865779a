"""Broker VM (GCP) or the local Kafka containers: Kafka, its exporter and the node exporter."""

from __future__ import annotations

import shlex

from host_checks import (
    check_containers_running_and_healthy,
    check_data_disk_mounted,
    check_no_secret_in_world_readable_files,
    check_ports_listening_only_where_expected,
    check_restarts_after_reboot,
)
from hydrostream_jobs import contract

from infra import catalog
from infra.local.stack import KAFKA_HOST_PORT
from infra.render.cloud_init import DEFAULT_DATA_DISK

ROLE = catalog.BROKER
SEARCH_DIRS = ("/etc", "/home", "/tmp", "/var/tmp")


def test_containers_running_and_healthy(role):
    assert {s.name for s in role.services()} >= {catalog.KAFKA.name, catalog.KAFKA_EXPORTER.name}
    check_containers_running_and_healthy(role)


def test_ports_listening_only_where_expected(role):
    # Locally Kafka also advertises a listener for clients on the host (infra/local/stack.py).
    check_ports_listening_only_where_expected(role, extra=() if role.on_gcp else (KAFKA_HOST_PORT,))


def test_data_disk_mounted(role):
    check_data_disk_mounted(role)


def test_services_restart_after_reboot(role):
    check_restarts_after_reboot(role)


def test_no_secret_in_world_readable_files(role):
    check_no_secret_in_world_readable_files(role, SEARCH_DIRS)


def test_topics_exist(role):
    kafka = role.hosts.containers[catalog.KAFKA.name]
    bootstrap = f"localhost:{catalog.KAFKA.port('kafka')}"
    listed = role.engine.run(f"docker exec {shlex.quote(kafka)} /opt/kafka/bin/kafka-topics.sh "
                             f"--bootstrap-server {bootstrap} --list")
    assert listed.rc == 0, listed.stderr
    assert {contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC} <= set(listed.stdout.split())


def test_kafka_log_lives_on_the_data_disk(role):
    if not role.on_gcp:
        return check_data_disk_mounted(role)
    data = role.node.file(f"{DEFAULT_DATA_DISK.mount_path}/kafka-data")
    assert data.is_directory
    assert data.uid == int(catalog.KAFKA.user or 0)
