"""The brokers' own metrics: a real broker with the stacks' metrics agent and config serves every Kafka
metric name, label and label value the alert rules and dashboards use, with the values they assume."""

from __future__ import annotations

import urllib.request

import pytest
from hydrostream_jobs import contract
from prometheus_client.parser import text_string_to_metric_families

from infra import catalog
from tests.kafka.broker import run_tool
from tests.monitoring.promql_names import (
    KAFKA_PREFIX,
    kafka_metric_references,
    label_matchers,
    monitoring_promql,
)

pytestmark = pytest.mark.slow

MESSAGES_IN = "kafka_server_brokertopicmetrics_messagesin_total"
# What the rules and dashboards were written against; the test below reads the real names, this only
# guards the extraction (a parser that found no name would pass any broker).
EXPECTED_REFERENCES = {
    "kafka_server_replicamanager_underreplicatedpartitions",
    "kafka_controller_kafkacontroller_offlinepartitionscount",
    "kafka_controller_kafkacontroller_activecontrollercount",
    "kafka_server_replicamanager_isrshrinks_total",
    MESSAGES_IN,
}
# Labels Prometheus adds to every series it scrapes (not the agent's).
TARGET_LABELS = {"job", "instance", "stack"}


def samples(broker) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample the broker's metrics agent serves."""
    with urllib.request.urlopen(broker.metrics_url, timeout=30) as response:
        text = response.read().decode()
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text) for sample in family.samples]


def value(found: list, name: str, **labels: str) -> float:
    (matched,) = [v for n, sample_labels, v in found if n == name and sample_labels == labels]
    return matched


def produce(broker, topic: str, count: int) -> None:
    done = run_tool("kafka-console-producer.sh", "--bootstrap-server", broker.bootstrap_servers,
                    "--topic", topic, input_text="".join(f'{{"n": {n}}}\n' for n in range(count)))
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_agent_listens_on_the_catalog_port_in_the_stacks():
    """The test broker picks its own port; the VMs and the container use the catalog's."""
    assert catalog.KAFKA.port("metrics") == catalog.KAFKA_METRICS_AGENT.port == 9404
    assert f"={catalog.KAFKA_METRICS_PORT}:" in catalog.KAFKA.env["KAFKA_OPTS"]


def test_every_kafka_metric_of_the_rules_and_dashboards_is_on_a_real_broker(broker):
    # A topic's counters exist once the broker took messages for it.
    produce(broker, contract.READINGS_TOPIC, 3)
    referenced = kafka_metric_references()
    assert set(referenced) >= EXPECTED_REFERENCES, referenced
    found = samples(broker)
    served = {name for name, _labels, _value in found}
    missing = {name: where for name, where in referenced.items() if name not in served}
    assert missing == {}, f"not on the broker's /metrics: {missing}"
    # Every label a rule or panel matches on a broker metric is served, with that value.
    for where, expr in monitoring_promql().items():
        for metric, label, op, wanted in label_matchers(expr):
            if not metric.startswith(KAFKA_PREFIX) or label in TARGET_LABELS:
                continue
            values = {labels.get(label) for name, labels, _value in found if name == metric}
            assert op == "=" and wanted in values, (
                f"{where}: {metric}{{{label}{op}{wanted!r}}} not in {values}")


def test_the_broker_counts_what_it_took_and_reports_a_healthy_single_node(broker):
    before = samples(broker)
    # The per-topic counter appears with the topic's first message; earlier tests may have sent some.
    start = (value(before, MESSAGES_IN, topic=contract.READINGS_TOPIC)
             if any(labels.get("topic") == contract.READINGS_TOPIC for name, labels, _ in before
                    if name == MESSAGES_IN) else 0)
    produce(broker, contract.READINGS_TOPIC, 7)
    after = samples(broker)
    assert value(after, MESSAGES_IN, topic=contract.READINGS_TOPIC) - start == 7
    # A single node: the one active controller, nothing under-replicated or offline.
    assert value(after, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(after, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(after, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
