"""The stacks' topic script (infra/render/templates/kafka-topics.sh) on a real broker, via tool wrappers."""

from __future__ import annotations

import re

import pytest
from hydrostream_jobs import contract

from infra.gcp.kafka import topics as stack_topics
from infra.services import kafka as kafka_service
from infra.settings import KafkaSettings
from tests.kafka.broker import run_tool
from tests.kafka.conftest import TEST_PARTITIONS, create_topics


def described(broker, topic: str) -> tuple[int, int]:
    """(partitions, retention.ms) of a topic as the broker reports them."""
    done = run_tool("kafka-topics.sh", "--bootstrap-server", broker.bootstrap_servers, "--describe",
                    "--topic", topic)
    assert done.returncode == 0, done.stderr
    partitions = int(re.search(r"PartitionCount:\s*(\d+)", done.stdout).group(1))
    configs = run_tool("kafka-configs.sh", "--bootstrap-server", broker.bootstrap_servers, "--describe",
                       "--entity-type", "topics", "--entity-name", topic)
    assert configs.returncode == 0, configs.stderr
    retention = int(re.search(r"\bretention\.ms=(-?\d+)", configs.stdout).group(1))
    return partitions, retention


@pytest.mark.slow
def test_the_session_broker_has_the_stack_topics_as_specified(broker):
    expected = {contract.READINGS_TOPIC: 72 * 3_600_000, contract.DEAD_LETTER_TOPIC: 168 * 3_600_000}
    specs = stack_topics(KafkaSettings(partitions=TEST_PARTITIONS))
    assert {t.name: t.retention_ms for t in specs} == expected
    for name, retention_ms in expected.items():
        assert described(broker, name) == (TEST_PARTITIONS, retention_ms)


@pytest.mark.slow
def test_running_the_script_again_converges_retention_and_keeps_partitions(broker):
    create_topics(broker, kafka_service.TopicSpec("hydro.test.converge", 3, 60_000))
    assert described(broker, "hydro.test.converge") == (3, 60_000)
    # A second run (a VM reboot, a new stack config) must not fail on the existing topic.
    create_topics(broker, kafka_service.TopicSpec("hydro.test.converge", 3, 120_000))
    assert described(broker, "hydro.test.converge") == (3, 120_000)
