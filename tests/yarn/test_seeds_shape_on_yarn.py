"""The seeds' workers (e2-medium) on a real YARN: the jobs the sizing would derive for them cannot both run.

The settings refuse e2-medium before any resource exists (a shared-core type; infra/sizing.py). This shows
what a real scheduler does with what the sizing would have produced had it not: NodeManagers of an
e2-medium's YARN share, the cluster's YARN properties and both jobs' Spark properties from the sizing's own
functions (no plan exists for a refused shape).
"""

from __future__ import annotations

import time

import pytest

from infra import sizing
from infra.services import kafka as kafka_service
from tests.kafka.broker import create_topics
from tests.kafka.conftest import TEST_PARTITIONS
from tests.yarn.jobs_on_yarn import (
    APP_NAMES,
    PlannedDataproc,
    Submission,
    YarnConsumer,
    YarnProducer,
    planned_dataproc,
    release_files,
    wait_for_application,
)
from tests.yarn.minicluster import MiniYarn
from tests.yarn.test_jobs_on_yarn import executors_granted

pytestmark = pytest.mark.slow
SEEDS_WORKER = "e2-medium"
# How long the producer is watched once the scheduler has said why it holds it back.
HELD_SECONDS = 20


def test_the_settings_refuse_the_seeds_worker():
    with pytest.raises(sizing.SizingError, match="shared-core"):
        sizing.worker_shape(SEEDS_WORKER)


def test_on_the_seeds_workers_the_producer_never_gets_yarn_resources(yarn_broker, influxdb, tmp_path):
    dev = planned_dataproc("dev")
    # What the sizing derives for two e2-medium workers, past the shape check the settings make first.
    seeds = sizing.spark_sizing(sizing.shape("e2-standard-4"), sizing.shape(SEEDS_WORKER), dev.workers)
    planned = PlannedDataproc(
        stack=SEEDS_WORKER, cluster_properties=seeds.cluster_properties(), workers=dev.workers,
        job_properties={"consumer": seeds.job_properties(seeds.consumer_executors),
                        "producer": seeds.job_properties(seeds.producer_executors)},
        jar_names=dev.jar_names, python_file_names=dev.python_file_names)
    yarn = MiniYarn(tmp_path / "cluster", planned.node_shape, planned.workers, planned.cluster_properties)
    topic = "hydro.yarn.seeds"
    create_topics(yarn_broker, kafka_service.TopicSpec(topic, TEST_PARTITIONS, 3_600_000))
    jars, py_files = release_files(tmp_path / "release", planned.jar_names, planned.python_file_names)

    def submission(job: str) -> Submission:
        return Submission(yarn, planned.spark_properties(job), jars, py_files, tmp_path / "staging")

    yarn.start()
    consumer = YarnConsumer(tmp_path / "consumer", yarn_broker.bootstrap_servers, topic, influxdb.url,
                            influxdb.token, influxdb.org, influxdb.bucket, submission=submission("consumer"))
    producer = YarnProducer(tmp_path / "producer", submission("producer"), yarn_broker.bootstrap_servers,
                            topic)
    try:
        consumer.start()
        wait_for_application(yarn, APP_NAMES["consumer"],
                             executors_granted(planned.spark_properties("consumer")), consumer.process,
                             consumer.log)
        producer.start()
        held = wait_for_application(yarn, APP_NAMES["producer"],
                                    lambda app: "AM resource limit" in app["diagnostics"], producer.process,
                                    producer.log, timeout=600)
        time.sleep(HELD_SECONDS)
        still = yarn.application(APP_NAMES["producer"])
        report = yarn.report()
    finally:
        producer.stop()
        consumer.stop()
        yarn.stop()
    print(f"seeds' producer: {held['diagnostics']}")
    assert still["state"] == "ACCEPTED" and still["am_container"] is None and not still["containers"], still
    # Not for want of memory: the cluster has room for the producer's AM and executor...
    free = sum(n["total"]["memory_mb"] - n["allocated"]["memory_mb"] for n in report["nodes"])
    print(f"free memory while held: {free} MB of {sum(n['total']['memory_mb'] for n in report['nodes'])}")
    assert free >= sizing.am_container_mb() + seeds.executor_container_mb
