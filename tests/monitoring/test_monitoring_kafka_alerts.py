"""A Kafka alert fired for real: Prometheus scrapes the metrics agents of a real three-node cluster with the
shipped rules (monitoring/prometheus/rules/kafka.yml); one broker stops, the under-replicated-partitions
alert fires, and it resolves once the broker is back and its replicas have caught up."""

from __future__ import annotations

import re
import urllib.parse

import pytest
import yaml
from hydrostream_jobs import contract
from prometheus_server import get_json, prometheus_server

from infra.gcp.kafka import topics as stack_topics
from infra.render.prometheus_volume import RULES_DIR
from infra.settings import KafkaSettings
from tests.kafka.cluster import Cluster

# Three JVMs, like the other three-broker tests: one worker runs them one after the other.
pytestmark = pytest.mark.slow

RULES = RULES_DIR / "kafka.yml"
ALERT = "HydroKafkaUnderReplicatedPartitions"
# The only change to the shipped rules: this alert's `for:` (10 minutes in production) becomes TEST_FOR, so
# the test takes a minute instead of ten; expression, labels and annotations are the shipped ones.
TEST_FOR = "30s"
EVALUATION_INTERVAL = "2s"
SETTINGS = KafkaSettings(brokers=3, partitions=2)


def with_test_for(text: str) -> str:
    """The rules file with ALERT's `for:` (and nothing else) replaced by TEST_FOR."""
    start = text.index(f"- alert: {ALERT}\n")
    end = text.find("- alert: ", start + 1)
    end = len(text) if end < 0 else end
    block, count = re.subn(r"(\n\s+for: )\S+\n", rf"\g<1>{TEST_FOR}\n", text[start:end])
    assert count == 1, f"{ALERT} has {count} `for:` lines"
    return text[:start] + block + text[end:]


def rules_by_alert(text: str) -> dict[str, dict]:
    return {rule["alert"]: rule for group in yaml.safe_load(text)["groups"] for rule in group["rules"]}


def test_the_substitution_changes_only_the_alert_s_for():
    shipped = RULES.read_text()
    changed = with_test_for(shipped)
    before, after = rules_by_alert(shipped), rules_by_alert(changed)
    assert before[ALERT]["for"] != TEST_FOR and after[ALERT]["for"] == TEST_FOR
    assert {**after[ALERT], "for": before[ALERT]["for"]} == before[ALERT]
    assert {name: rule for name, rule in after.items() if name != ALERT} == {
        name: rule for name, rule in before.items() if name != ALERT}


def alerts(server, state: str) -> list[dict]:
    """ALERT's alerts Prometheus reports in `state` (pending or firing)."""
    return [alert for alert in get_json(f"{server.base}/api/v1/alerts")["alerts"]
            if alert["labels"]["alertname"] == ALERT and alert["state"] == state]


def query(server, expr: str) -> list[dict]:
    return get_json(f"{server.base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")["result"]


def rule(server) -> dict:
    """ALERT as Prometheus evaluates it (state, health, last evaluation)."""
    (found,) = [r for group in get_json(f"{server.base}/api/v1/rules")["groups"] for r in group["rules"]
                if r["name"] == ALERT]
    return found


def test_under_replicated_partitions_fire_when_a_broker_stops_and_resolve_after_its_return(
        tmp_path, prometheus_binary):
    cluster = Cluster(tmp_path / "cluster", min_insync_replicas=SETTINGS.min_isr)
    cluster.format()
    try:
        cluster.start()
        done = cluster.create_topics(*stack_topics(SETTINGS))
        assert done.returncode == 0, done.stdout + done.stderr
        cluster.wait_for(contract.READINGS_TOPIC,
                         lambda partitions: all(len(isr) == 3 for _l, _r, isr in partitions.values()),
                         "every replica in sync")
        agents = tuple(node.metrics_address for node in cluster.nodes)
        with prometheus_server(prometheus_binary, tmp_path / "prometheus",
                               extra_rules={RULES.name: with_test_for(RULES.read_text())},
                               evaluation_interval=EVALUATION_INTERVAL, kafka=agents) as server:
            def all_brokers_scraped():
                targets = get_json(f"{server.base}/api/v1/targets")["activeTargets"]
                kafka = [t for t in targets if t["labels"]["job"] == "kafka"]
                return sorted(t["labels"]["instance"] for t in kafka if t["health"] == "up") == sorted(agents)

            server.wait_for(all_brokers_scraped, 90, "the three brokers' agents scraped")
            # Healthy: the three brokers report no under-replicated partition and the rule, evaluated on
            # them, is inactive.
            urp = "kafka_server_replicamanager_underreplicatedpartitions"
            server.wait_for(lambda: len(query(server, urp)) == 3, 60, "three brokers' URP series")
            assert {sample["value"][1] for sample in query(server, urp)} == {"0"}
            server.wait_for(lambda: rule(server)["health"] == "ok" and rule(server)["state"] == "inactive",
                            30, f"{ALERT} evaluated, inactive")

            stopped = cluster.node(3)
            stopped.stop()
            cluster.wait_for(contract.READINGS_TOPIC,
                             lambda partitions: all(3 not in isr for _l, _r, isr in partitions.values()),
                             "node 3 out of every in-sync replica set")
            (firing,) = server.wait_for(lambda: alerts(server, "firing"), 180, f"{ALERT} firing")
            assert firing["labels"] == {"alertname": ALERT, "severity": "critical", "stack": "verify"}
            # The stack's two topics (readings, dead letters) of two partitions each: every partition has a
            # replica on node 3.
            assert float(firing["value"]) == 2 * SETTINGS.partitions

            stopped.start()
            cluster.wait_for(contract.READINGS_TOPIC,
                             lambda partitions: all(len(isr) == 3 for _l, _r, isr in partitions.values()),
                             "node 3 back in sync", timeout=240)
            server.wait_for(lambda: not alerts(server, "firing") and not alerts(server, "pending"), 120,
                            f"{ALERT} resolved")
    finally:
        cluster.stop()
