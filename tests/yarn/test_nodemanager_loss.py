"""A worker lost under a running consumer on YARN (dev's sizing): what YARN and Spark do, and the sink.

The NodeManager is stopped inside the minicluster: its containers end, and the ResourceManager hears
nothing more from it (MiniYARNCluster's in-process tracker drops the unregistration), as with a worker
that went away. The ResourceManager declares such a node LOST after yarn.nm.liveness-monitor.expiry-
interval-ms, 10 minutes by Hadoop's default; this cluster uses LIVENESS_EXPIRY_MS so the test sees what
follows in a few seconds. Spark only asks for a replacement once YARN reports the lost containers.
"""

from __future__ import annotations

import time

import pytest

from infra.render import cloud_init
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.broker import create_topics
from tests.kafka.conftest import TEST_PARTITIONS
from tests.kafka.pipeline import fleet_messages, send_lines
from tests.kafka.test_kafka_end_to_end import BEHIND
from tests.yarn.jobs_on_yarn import (
    APP_NAMES,
    Submission,
    YarnConsumer,
    planned_dataproc,
    release_files,
    wait_for_application,
)
from tests.yarn.minicluster import MiniYarn
from tests.yarn.test_jobs_on_yarn import executors_granted

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("yarn")]
LIVENESS_EXPIRY_MS = 15_000
MESSAGES = 600


def test_a_lost_worker_costs_executors_yarn_replaces_them_and_the_sink_loses_nothing(
    yarn_broker, influxdb, tmp_path
):
    planned = planned_dataproc("dev")
    yarn = MiniYarn(tmp_path / "cluster", planned.node_shape, planned.workers, planned.cluster_properties,
                    overrides={"yarn.nm.liveness-monitor.expiry-interval-ms": str(LIVENESS_EXPIRY_MS)})
    topic = "hydro.yarn.lost-worker"
    create_topics(yarn_broker, cloud_init.TopicSpec(topic, TEST_PARTITIONS, 3_600_000))
    jars, py_files = release_files(tmp_path / "release", planned.jar_names, planned.python_file_names)
    properties = planned.spark_properties("consumer")
    consumer = YarnConsumer(
        tmp_path / "consumer", yarn_broker.bootstrap_servers, topic, influxdb.url, influxdb.token,
        influxdb.org, influxdb.bucket, max_offsets_per_trigger=100,
        submission=Submission(yarn, properties, jars, py_files, tmp_path / "staging"))
    messages = fleet_messages(MESSAGES)
    yarn.start()
    try:
        consumer.start()
        before = wait_for_application(yarn, APP_NAMES["consumer"], executors_granted(properties),
                                      consumer.process, consumer.log)
        send_lines(yarn_broker.bootstrap_servers, topic, messages[:MESSAGES // 2])
        consumer.wait_for(lambda s: consumer.records(s) >= MESSAGES // 2, timeout=600)

        am_node = next(c["node"] for c in before["containers"] if c["id"] == before["am_container"])
        executors_on = {node: [c["id"] for c in before["containers"]
                               if c["node"] == node and c["id"] != before["am_container"]]
                        for node in yarn.node_ids}
        # A worker with executors and without the AM. The capacity scheduler hands out at most one
        # off-switch container per node heartbeat (maximum-offswitch-assignments 1), so the two executors
        # have landed on different workers in every run; should both sit beside the AM, the AM's worker
        # goes, a path no run has taken yet (the AM's attempt fails with it).
        spare = [node for node in yarn.node_ids if node != am_node and executors_on[node]]
        lost = spare[0] if spare else am_node
        print(f"lost {lost}: AM there: {lost == am_node}, executors there: {executors_on[lost]}")
        stopped_at = time.time()
        yarn.stop_node_manager(lost)

        def node_state() -> str:
            return next(n["state"] for n in yarn.report()["nodes"] if n["id"] == lost)

        while node_state() != "LOST":
            assert time.time() - stopped_at < LIVENESS_EXPIRY_MS / 1000 + 60, yarn.report()["nodes"]
            time.sleep(1)
        print(f"{lost} LOST after {time.time() - stopped_at:.0f}s")
        def replaced(app: dict) -> bool:
            return executors_granted(properties)(app) and all(c["node"] != lost for c in app["containers"])

        after = wait_for_application(yarn, APP_NAMES["consumer"], replaced, consumer.process, consumer.log)
        print(f"every executor again after {time.time() - stopped_at:.0f}s, attempts {after['attempts']}: "
              f"{sorted((c['id'], c['node']) for c in after['containers'])}")

        send_lines(yarn_broker.bootstrap_servers, topic, messages[MESSAGES // 2:])
        consumer.wait_for(lambda s: consumer.records(s) >= MESSAGES and s.get(BEHIND) == 0, timeout=600)
    finally:
        consumer.stop()
        yarn.stop()
    readings, windows, _ = expected_points([m.encode() for m in messages])
    assert_matches(influxdb, readings, windows)
