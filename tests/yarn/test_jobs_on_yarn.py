"""Both jobs on a real YARN (MiniYARNCluster) with each stack's sizing, read from its plan."""

from __future__ import annotations

import time

import pytest

from infra.render import cloud_init
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.broker import create_topics
from tests.kafka.conftest import TEST_PARTITIONS
from tests.kafka.pipeline import offsets, topic_messages
from tests.kafka.test_kafka_end_to_end import BEHIND
from tests.yarn.jobs_on_yarn import (
    APP_NAMES,
    Submission,
    YarnConsumer,
    YarnProducer,
    planned_dataproc,
    release_files,
    wait_for_application,
)
from tests.yarn.minicluster import MiniYarn

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("yarn")]
MB = {"k": 1 / 1024, "m": 1, "g": 1024}
# Readings the producer sends on YARN before it is stopped (at its --rate 100, a few seconds).
SENT_AT_LEAST = 300


def wait_for_messages(bootstrap: str, topic: str, count: int, producer: YarnProducer, timeout: float = 600):
    """Poll the topic's end offsets (Kafka's own tool) until it holds `count` messages."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sum(offsets(bootstrap, topic, "latest").values()) >= count:
            return
        assert producer.process is not None and producer.process.poll() is None, producer.log()
        time.sleep(1)
    raise AssertionError(f"the producer did not send {count} messages within {timeout}s:\n{producer.log()}")


def megabytes(value: str) -> int:
    """A Spark memory setting (`5312m`, `8g`) in MB."""
    return int(int(value[:-1]) * MB[value[-1].lower()])


def executors_granted(properties: dict[str, str]):
    """An application predicate: RUNNING, its AM and every executor the properties ask for, none pending."""
    wanted = int(properties["spark.executor.instances"])
    return lambda app: (app["state"] == "RUNNING" and app["am_container"] is not None
                        and len(app["containers"]) == wanted + 1 and not app["pending"])


def counted_vcores(planned, cores: str) -> int:
    """The vcores YARN books for a container asking `cores`: the memory-only calculator books one, whatever
    the ask (Spark still runs spark.executor.cores tasks in it); the dominant one books the ask."""
    calculator = planned.cluster_properties["capacity-scheduler:yarn.scheduler.capacity.resource-calculator"]
    return 1 if calculator.endswith(".DefaultResourceCalculator") else int(cores)


def round_up(value: int, step: int) -> int:
    return -(-value // step) * step


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack_on_yarn(request, tmp_path_factory):
    """A MiniYARNCluster with one NodeManager per worker of the stack's plan, each of the plan's size."""
    planned = planned_dataproc(request.param)
    workdir = tmp_path_factory.mktemp(f"yarn-{request.param}")
    yarn = MiniYarn(workdir / "cluster", planned.node_shape, planned.workers, planned.cluster_properties)
    yarn.start()
    try:
        yield planned, yarn, workdir
    finally:
        yarn.stop()


def test_the_scheduler_runs_the_clusters_yarn_properties(stack_on_yarn):
    planned, yarn, _ = stack_on_yarn
    report = yarn.report()
    properties = planned.cluster_properties
    assert report["resource_calculator"] == properties[
        "capacity-scheduler:yarn.scheduler.capacity.resource-calculator"]
    for bound in ("minimum", "maximum"):
        declared = properties[f"yarn:yarn.scheduler.{bound}-allocation-mb"]
        assert report[f"{bound}_allocation"]["memory_mb"] == int(declared)
    nodes = [node for node in report["nodes"] if node["state"] == "RUNNING"]
    assert len(nodes) == planned.workers
    assert {(n["total"]["memory_mb"], n["total"]["vcores"]) for n in nodes} == {
        (planned.node_shape.memory_mb, planned.node_shape.vcores)}


def test_both_jobs_get_every_executor_they_ask_for_and_the_stream_reaches_the_sink(
    stack_on_yarn, yarn_broker, influxdb
):
    planned, yarn, workdir = stack_on_yarn
    topic = f"hydro.yarn.{planned.stack}"
    create_topics(yarn_broker, cloud_init.TopicSpec(topic, TEST_PARTITIONS, 3_600_000))
    jars, py_files = release_files(workdir / "release", planned.jar_names, planned.python_file_names)
    minimum = int(planned.cluster_properties["yarn:yarn.scheduler.minimum-allocation-mb"])

    def submission(job: str) -> Submission:
        return Submission(yarn, planned.spark_properties(job), jars, py_files, workdir / "staging")

    consumer = YarnConsumer(workdir / "consumer", yarn_broker.bootstrap_servers, topic, influxdb.url,
                            influxdb.token, influxdb.org, influxdb.bucket, submission=submission("consumer"),
                            max_offsets_per_trigger=planned.max_offsets_per_trigger)
    producer = YarnProducer(workdir / "producer", submission("producer"), yarn_broker.bootstrap_servers,
                            topic)
    try:
        try:
            # Dataproc submits the consumer first; the producer depends on it.
            consumer.start()
            wait_for_application(yarn, APP_NAMES["consumer"],
                                 executors_granted(planned.spark_properties("consumer")), consumer.process,
                                 consumer.log)
            producer.start()
            granted = {}
            for job, process, log in (("producer", producer.process, producer.log),
                                      ("consumer", consumer.process, consumer.log)):
                granted[job] = wait_for_application(
                    yarn, APP_NAMES[job], executors_granted(planned.spark_properties(job)), process, log)
            for job, app in granted.items():
                properties = planned.spark_properties(job)
                am = round_up(megabytes(properties["spark.yarn.am.memory"])
                              + megabytes(properties["spark.yarn.am.memoryOverhead"]), minimum)
                executor = megabytes(properties["spark.executor.memory"]) + megabytes(
                    properties["spark.executor.memoryOverhead"])
                sizes = sorted((c["memory_mb"], c["vcores"]) for c in app["containers"])
                instances = int(properties["spark.executor.instances"])
                expected = sorted([(am, counted_vcores(planned, properties["spark.yarn.am.cores"]))]
                                  + [(executor, counted_vcores(planned, properties["spark.executor.cores"]))]
                                  * instances)
                assert sizes == expected, (job, app)
                print(f"{planned.stack} {job}: {app['id']} containers {sizes}")

            wait_for_messages(yarn_broker.bootstrap_servers, topic, SENT_AT_LEAST, producer)
        finally:
            producer.stop()
        sent = sum(offsets(yarn_broker.bootstrap_servers, topic, "latest").values())
        consumer.wait_for(lambda s: consumer.records(s) >= sent and s.get(BEHIND) == 0, timeout=600)
    finally:
        consumer.stop()
    assert sent >= SENT_AT_LEAST
    readings, windows, _ = expected_points(topic_messages(yarn_broker.bootstrap_servers, topic, sent))
    assert_matches(influxdb, readings, windows)


def test_an_executor_one_allocation_step_above_the_nodemanager_fails_the_check(stack_on_yarn, yarn_broker):
    # The mutation: the producer's executor asks one allocation step more than a NodeManager has.
    planned, yarn, workdir = stack_on_yarn
    properties = planned.spark_properties("producer")
    step = int(planned.cluster_properties["yarn:yarn.scheduler.minimum-allocation-mb"])
    too_big = planned.node_shape.memory_mb + step - megabytes(properties["spark.executor.memoryOverhead"])
    mutated = {**properties, "spark.executor.memory": f"{too_big}m"}
    jars, py_files = release_files(workdir / "release", planned.jar_names, planned.python_file_names)
    submission = Submission(yarn, mutated, jars, py_files, workdir / "staging")
    producer = YarnProducer(workdir / "too-big", submission, yarn_broker.bootstrap_servers, "hydro.readings")
    before = {app["id"] for app in yarn.report()["applications"]}
    producer.start()
    try:
        with pytest.raises(AssertionError, match="above the max threshold"):
            wait_for_application(yarn, APP_NAMES["producer"], executors_granted(mutated), producer.process,
                                 producer.log, timeout=600)
    finally:
        producer.stop()
    # Spark refused before asking YARN for anything.
    assert {app["id"] for app in yarn.report()["applications"]} == before
