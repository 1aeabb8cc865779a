"""Both jobs on a real YARN (MiniYARNCluster) with each stack's sizing, read from its plan; a worker lost
under dev's consumer.

One MiniYARNCluster per stack (`stack_on_yarn`) and one run of both jobs on it (`stack_run`), which every test
of that stack reads: the consumer submitted first, then the producer (Dataproc's order), the producer stopped
once it has written, the consumer caught up. The lost-worker test comes last on dev's cluster and goes on with
the same consumer, alone once the producer's application has ended.

The lost worker: its NodeManager is stopped inside the minicluster; its containers end, and the
ResourceManager hears nothing more from it (MiniYARNCluster's in-process tracker drops the unregistration),
as with a worker that went away. The ResourceManager declares such a node LOST after
yarn.nm.liveness-monitor.expiry-interval-ms, 10 minutes by Hadoop's default; these clusters use
LIVENESS_EXPIRY_MS so the test sees what follows in seconds. Spark only asks for a replacement once YARN
reports the lost containers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from infra.services import kafka as kafka_service
from tests.influxdb.influxdb_server import InfluxBucket
from tests.jobs import oracle
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.broker import create_topics
from tests.kafka.conftest import TEST_PARTITIONS
from tests.kafka.pipeline import fleet_messages, offsets, send_lines, topic_messages
from tests.kafka.test_kafka_end_to_end import BEHIND
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

pytestmark = pytest.mark.slow
MB = {"k": 1 / 1024, "m": 1, "g": 1024}
# Readings the producer sends on YARN before it is stopped (at its --rate 100, a few seconds).
SENT_AT_LEAST = 300
# The ResourceManager's wait before it declares a silent NodeManager LOST (Hadoop's default: 10 minutes).
LIVENESS_EXPIRY_MS = 15_000
# Messages sent to the consumer once YARN has replaced the lost worker's executor.
AFTER_LOSS = 300
ENDED = {"FINISHED", "FAILED", "KILLED"}


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


def wait_until_sent(producer: YarnProducer, count: int, timeout: float = 600) -> None:
    """Poll the producer's own count of written messages until it reaches `count` (the test then reads the
    topic's end offsets with Kafka's tool)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if (producer.sent() or 0) >= count:
            return
        assert producer.process is not None and producer.process.poll() is None, producer.log()
        time.sleep(1)
    raise AssertionError(f"the producer did not send {count} messages within {timeout}s:\n{producer.log()}")


def after_the_last_event(messages: list[bytes]) -> str:
    """An instant two seconds after the latest event time among the valid `messages` (ISO 8601, UTC)."""
    latest_ns = max(reading["time_ns"] for reason, reading in map(oracle.check, messages) if reason is None)
    return datetime.fromtimestamp(latest_ns // 1_000_000_000 + 2, tz=UTC).isoformat()


@dataclass
class StackRun:
    """Both jobs run once on a stack's cluster: what YARN granted, what was sent, where it went."""

    planned: PlannedDataproc
    yarn: MiniYarn
    topic: str
    bucket: InfluxBucket
    consumer: YarnConsumer          # still running: the lost-worker test goes on with it
    granted: dict[str, dict]        # job -> its application once YARN had given it every executor
    messages: list[bytes]           # the topic once the producer stopped, read back with Kafka's tool


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack_on_yarn(request, tmp_path_factory):
    """A MiniYARNCluster with one NodeManager per worker of the stack's plan, each of the plan's size."""
    planned = planned_dataproc(request.param)
    workdir = tmp_path_factory.mktemp(f"yarn-{request.param}")
    yarn = MiniYarn(workdir / "cluster", planned.node_shape, planned.workers, planned.cluster_properties,
                    overrides={"yarn.nm.liveness-monitor.expiry-interval-ms": str(LIVENESS_EXPIRY_MS)})
    yarn.start()
    try:
        yield planned, yarn, workdir
    finally:
        yarn.stop()


@pytest.fixture(scope="module")
def stack_run(stack_on_yarn, yarn_broker, influxd):
    """Both jobs submitted with the stack's plan: the consumer first, every executor granted, then the
    producer until it has written SENT_AT_LEAST messages; then the consumer catches up with the topic."""
    planned, yarn, workdir = stack_on_yarn
    topic = f"hydro.yarn.{planned.stack}"
    create_topics(yarn_broker, kafka_service.TopicSpec(topic, TEST_PARTITIONS, 3_600_000))
    jars, py_files = release_files(workdir / "release", planned.jar_names, planned.python_file_names)
    bucket = influxd.new_bucket()

    def submission(job: str) -> Submission:
        return Submission(yarn, planned.spark_properties(job), jars, py_files, workdir / "staging")

    consumer = YarnConsumer(workdir / "consumer", yarn_broker.bootstrap_servers, topic, bucket.url,
                            bucket.token, bucket.org, bucket.bucket, submission=submission("consumer"),
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
            wait_until_sent(producer, SENT_AT_LEAST)
        finally:
            producer.stop()
        sent = sum(offsets(yarn_broker.bootstrap_servers, topic, "latest").values())
        consumer.wait_for(lambda s: consumer.records(s) >= sent and s.get(BEHIND) == 0, timeout=600)
        messages = topic_messages(yarn_broker.bootstrap_servers, topic, sent)
        yield StackRun(planned, yarn, topic, bucket, consumer, granted, messages)
    finally:
        consumer.stop()


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


def test_both_jobs_get_every_executor_they_ask_for_of_the_size_they_ask(stack_run):
    planned = stack_run.planned
    minimum = int(planned.cluster_properties["yarn:yarn.scheduler.minimum-allocation-mb"])
    assert sorted(stack_run.granted) == ["consumer", "producer"]
    for job, app in stack_run.granted.items():
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


def test_the_producers_stream_reaches_the_sink_through_the_consumer(stack_run):
    assert len(stack_run.messages) >= SENT_AT_LEAST
    readings, windows, _ = expected_points(stack_run.messages)
    assert_matches(stack_run.bucket, readings, windows)


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


# dev's cluster only, and after every other test of it: it takes a worker away.
@pytest.mark.parametrize("stack_on_yarn", ["dev"], indirect=True)
def test_a_lost_worker_costs_executors_yarn_replaces_them_and_the_sink_loses_nothing(stack_run, yarn_broker):
    yarn, consumer = stack_run.yarn, stack_run.consumer
    properties = stack_run.planned.spark_properties("consumer")
    # The consumer alone: the producer's application has ended and holds no container.
    wait_for_application(yarn, APP_NAMES["producer"],
                         lambda app: app["state"] in ENDED and not app["containers"], None, consumer.log,
                         timeout=120)
    before = yarn.application(APP_NAMES["consumer"])
    assert executors_granted(properties)(before), before

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

    # Later than everything the producer sent, so that no window of theirs is past the watermark.
    more = fleet_messages(AFTER_LOSS, start_time=after_the_last_event(stack_run.messages))
    send_lines(yarn_broker.bootstrap_servers, stack_run.topic, more)
    total = len(stack_run.messages) + AFTER_LOSS
    consumer.wait_for(lambda s: consumer.records(s) >= total and s.get(BEHIND) == 0, timeout=600)
    readings, windows, _ = expected_points(stack_run.messages + [m.encode() for m in more])
    assert_matches(stack_run.bucket, readings, windows)
