"""Fixtures of the YARN suite: a MiniYARNCluster shaped like a stack's Dataproc workers, a Kafka broker."""

from __future__ import annotations

import pytest

from infra.gcp.kafka import topics as stack_topics
from infra.settings import KafkaSettings
from tests.kafka.broker import Broker, create_topics
from tests.kafka.conftest import TEST_PARTITIONS


@pytest.fixture(scope="module")
def yarn_broker(tmp_path_factory):
    """A broker for this module's jobs (tests/kafka's, started the same way), with the stacks' topics."""
    broker = Broker(tmp_path_factory.mktemp("yarn-kafka"))
    broker.format()
    broker.start()
    try:
        create_topics(broker, *stack_topics(KafkaSettings(partitions=TEST_PARTITIONS)))
        yield broker
    finally:
        broker.stop()
