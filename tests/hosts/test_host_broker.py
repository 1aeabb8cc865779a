"""Broker VMs (GCP, every broker of the cluster) or the local Kafka containers: what is particular to
Kafka. The checks every role shares are in test_host_roles.py."""

from __future__ import annotations

import shlex

from host_checks import check_data_disk_mounted
from hydrostream_jobs import contract

from infra import catalog
from infra.render.cloud_init import DEFAULT_DATA_DISK

ROLE = catalog.BROKER


def test_broker_runs_kafka(role):
    assert catalog.KAFKA.name in {s.name for s in role.services()}


def test_topics_exist(role):
    kafka = role.hosts.containers[catalog.KAFKA.name]
    bootstrap = f"localhost:{catalog.KAFKA.port('kafka')}"
    listed = role.engine.run(f"docker exec --env KAFKA_OPTS= {shlex.quote(kafka)} "
                             f"/opt/kafka/bin/kafka-topics.sh "
                             f"--bootstrap-server {bootstrap} --list")
    assert listed.rc == 0, listed.stderr
    assert {contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC} <= set(listed.stdout.split())


def test_kafka_log_lives_on_the_data_disk(role):
    if not role.on_gcp:
        return check_data_disk_mounted(role)
    data = role.node.file(f"{DEFAULT_DATA_DISK.mount_path}/kafka-data")
    assert data.is_directory
    assert data.uid == int(catalog.KAFKA.user or 0)
