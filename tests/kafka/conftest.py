"""Fixtures of the Kafka suite: one real KRaft broker per session, its topics made by the stacks' script."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.gcp.kafka import topics as stack_topics
from infra.services import kafka as kafka_service
from infra.settings import KafkaSettings
from tests.jobs.influx_fake import FakeInflux
from tests.kafka.broker import Broker, create_topics

# Two partitions, so offsets, lag and batch bounds are per partition as in a stack.
TEST_PARTITIONS = 2


@contextlib.contextmanager
def stack_broker(workdir: Path) -> Iterator[Broker]:
    """A started broker in `workdir` with the stack's topics (readings, dead letters) made by the stacks'
    script; stopped on leaving."""
    broker = Broker(workdir)
    broker.format()
    broker.start()
    try:
        create_topics(broker, *stack_topics(KafkaSettings(partitions=TEST_PARTITIONS)))
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """The session's broker, with the stack's topics."""
    with stack_broker(tmp_path_factory.mktemp("kafka-broker")) as broker:
        yield broker


@pytest.fixture
def broker(kafka_broker):
    """The session's broker for a test that may stop and start it: running again afterwards."""
    yield kafka_broker
    if kafka_broker.process is None or kafka_broker.process.poll() is not None:
        kafka_broker.process = None
        kafka_broker.start()


@pytest.fixture
def topic(broker, request):
    """A fresh topic for one test (same script, same partitions as the stack's readings topic)."""
    name = "hydro.test." + request.node.name.replace("[", ".").replace("]", "")[:80]
    spec = kafka_service.TopicSpec(name.replace("_", "-"), TEST_PARTITIONS, 3_600_000)
    create_topics(broker, spec)
    return spec.name


@pytest.fixture
def influx():
    """The fake InfluxDB endpoint: only the three-broker test (test_kafka_cluster.py) still writes to it; the
    others write to the real one (tests/conftest.py's `influxdb`)."""
    fake = FakeInflux()
    fake.start()
    yield fake
    fake.stop()

