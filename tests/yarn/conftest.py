"""Fixtures of the YARN suite: a Kafka broker (the MiniYARNClusters are made by the test modules)."""

from __future__ import annotations

import pytest

from tests.kafka.conftest import stack_broker


@pytest.fixture(scope="session")
def yarn_broker(tmp_path_factory):
    """One broker for every YARN test of this process (tests/kafka's, started the same way), with the stacks'
    topics; each test makes its own topic on it."""
    with stack_broker(tmp_path_factory.mktemp("yarn-kafka")) as broker:
        yield broker
