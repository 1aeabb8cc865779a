"""Fixtures of the YARN suite: a MiniYARNCluster shaped like a stack's Dataproc workers, a Kafka broker."""

from __future__ import annotations

import pytest

from tests.kafka.conftest import stack_broker


@pytest.fixture(scope="module")
def yarn_broker(tmp_path_factory):
    """A broker for this module's jobs (tests/kafka's, started the same way), with the stacks' topics."""
    with stack_broker(tmp_path_factory.mktemp("yarn-kafka")) as broker:
        yield broker
