"""A real three-broker KRaft cluster (the stack's three-broker settings, clients authenticated and
authorized as on a stack) loses a broker mid-run and gets it back: the jobs' producer and consumer carry
every valid reading exactly once per series+time; with two brokers down a produce is refused instead of
acknowledged: Kafka's client reports the error, and the jobs' producer fails within its send timeout."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from hydrostream_jobs import contract

from infra.gcp.kafka import topics as stack_topics
from infra.services.kafka import CONSUMER_USER, PRODUCER_USER
from infra.settings import KafkaSettings
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.broker import run_tool
from tests.kafka.cluster import Cluster, Logins
from tests.kafka.pipeline import (
    command,
    dead_letters,
    job_env,
    offsets,
    produce_to_kafka,
    producer_args,
    topic_messages,
)
from tests.kafka.test_kafka_end_to_end import BEHIND, consumer_for, expected_dead_letters

# One worker runs the whole module: its three brokers are started once (make test: --dist loadfile).
pytestmark = pytest.mark.slow

PARTITIONS = 2
# What a three-broker stack asks for: the settings' replication, the topics its VMs create.
SETTINGS = KafkaSettings(brokers=3, partitions=PARTITIONS)
TOPIC = contract.READINGS_TOPIC
# The replace-broker test's own topic, granted to the jobs' users as the readings topic is.
REPLACE_TOPIC = "hydro.replace-broker"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three nodes formatted with one cluster id, authenticating and authorizing as a stack's brokers do,
    the stack's topics, users and ACLs made by the stacks' scripts."""
    workdir = tmp_path_factory.mktemp("kafka-cluster")
    cluster = Cluster(workdir, min_insync_replicas=SETTINGS.min_isr, logins=Logins.create(workdir))
    cluster.format()
    try:
        cluster.start()
        # Kafka 3.9.1 can leave a new cluster at metadata.version 3.0-IV1 when the first active controller
        # loses leadership while writing the bootstrap records and wins it again (elections churn on an
        # overloaded machine: KAFKA-20839, https://github.com/apache/kafka/pull/22954). Such a cluster refuses
        # the controllers' API the procedure uses: say so here rather than in the middle of a test.
        status = run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", cluster.controllers,
                          *cluster.login(controller=True), "describe", "--status")
        assert status.returncode == 0, (
            "the new cluster's quorum does not answer (metadata.version left at 3.0-IV1 by KAFKA-20839 "
            f"if it says 'Direct-to-controller communication is not supported'):\n{status.stderr[-2000:]}")
        done = cluster.create_topics(*stack_topics(SETTINGS))
        assert done.returncode == 0, done.stdout + done.stderr
        granted = cluster.grant_access(REPLACE_TOPIC)
        assert granted.returncode == 0, granted.stdout + granted.stderr
        yield cluster
    finally:
        cluster.stop()


def all_in_sync(partitions: dict) -> bool:
    return all(len(isr) == 3 for _leader, _replicas, isr in partitions.values())


def test_the_stack_topics_are_on_all_three_brokers_with_two_in_sync_required(cluster):
    for topic in (contract.READINGS_TOPIC, contract.DEAD_LETTER_TOPIC):
        partitions = cluster.wait_for(topic, all_in_sync, f"{topic} fully in sync")
        assert len(partitions) == PARTITIONS
        for _leader, replicas, _isr in partitions.values():
            assert sorted(replicas) == [1, 2, 3]
        configs = run_tool("kafka-configs.sh", "--bootstrap-server", cluster.bootstrap_servers,
                           *cluster.login(), "--describe", "--entity-type", "topics", "--entity-name", topic)
        assert configs.returncode == 0, configs.stderr
        assert re.search(r"\bmin\.insync\.replicas=2\b", configs.stdout), configs.stdout
    done = cluster.create_topics(*stack_topics(SETTINGS))  # a reboot runs the script again: converges
    assert done.returncode == 0, done.stderr
    # Replicas are spread over the three racks (the zones on GCP): each partition has one per rack.
    racks = {node.node.node_id: node.node.rack for node in cluster.nodes}
    for _leader, replicas, _isr in cluster.describe(TOPIC).values():
        assert len({racks[r] for r in replicas}) == 3


def test_the_pipeline_rides_out_a_killed_broker_and_its_return(cluster, influx, tmp_path):
    half, bound = 1200, 600
    bootstrap = cluster.bootstrap_servers
    producing = cluster.job_login(PRODUCER_USER)
    produce_to_kafka(bootstrap, TOPIC, half, login=producing)
    consumer = consumer_for(tmp_path, cluster, TOPIC, influx, max_offsets_per_trigger=bound, trigger="1s",
                            login=cluster.job_login(CONSUMER_USER))
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= bound)
        # Kill the leader of partition 0: its partitions must move to the other two.
        victim = cluster.node(cluster.describe(TOPIC)[0][0])
        victim.kill()
        cluster.wait_for(TOPIC, lambda p: all(leader not in (-1, victim.node.node_id) and len(isr) == 2
                                              for leader, _replicas, isr in p.values()),
                         f"leadership leaving node {victim.node.node_id}")
        # acks=all with two of three in sync: the second half is acknowledged while the node is down.
        produce_to_kafka(bootstrap, TOPIC, half, start_time="2026-01-01T00:02:00Z", login=producing)
        cluster.start(victim)
        cluster.wait_for(TOPIC, all_in_sync, f"node {victim.node.node_id} back in sync")
        consumer.wait_for(lambda s: consumer.records(s) >= 2 * half and s.get(BEHIND) == 0, timeout=400)
    finally:
        consumer.stop()
    # The idempotent producer wrote each message once: no loss, no retried duplicate in the log.
    assert sum(offsets(bootstrap, TOPIC, "latest", cluster.admin_config).values()) == 2 * half
    sent = topic_messages(bootstrap, TOPIC, 2 * half, cluster.admin_config)
    readings, windows, _quarantined = expected_points(sent)
    assert_matches(influx, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


SEND_TIMEOUT_S = 10


def test_with_two_brokers_down_a_produce_is_refused_never_acknowledged(cluster):
    survivor, *lost = cluster.nodes
    before = offsets(cluster.bootstrap_servers, TOPIC, "latest", cluster.admin_config)
    for node in lost:
        node.kill()
    try:
        # The jobs' producer (idempotent, acks=all): no producer id without a KRaft quorum, so Kafka's
        # client waits with no timeout of its own; the job's watchdog must fail it, loudly and in time.
        started = time.monotonic()
        producer = subprocess.Popen(
            command("producer.py", "--sink", "kafka", "--bootstrap-servers", cluster.bootstrap_servers,
                    "--topic", TOPIC, *producer_args(200, "2026-01-01T00:30:00Z"),
                    "--send-timeout", str(SEND_TIMEOUT_S), *cluster.job_login(PRODUCER_USER)),
            env=job_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        # Meanwhile Kafka's own client with acks=all and bounded timeouts: every record fails with the
        # client's error (NotEnoughReplicas or the expiry of unacknowledged records), never acked.
        done = run_tool(
            "kafka-console-producer.sh", "--bootstrap-server", cluster.bootstrap_servers, "--topic", TOPIC,
            "--producer.config", str(cluster.admin_config),
            *(word for prop in ("acks=all", "enable.idempotence=false", "linger.ms=0",
                                "request.timeout.ms=5000", "delivery.timeout.ms=10000", "max.block.ms=10000")
              for word in ("--producer-property", prop)),
            input_text="".join(f"lost-{i}\n" for i in range(20)), timeout=240)
        assert re.search(r"ERROR Error when sending message.*(TimeoutException|NotEnoughReplicas)",
                         done.stderr, re.DOTALL), done.stderr[-4000:]
        try:
            _out, err = producer.communicate(timeout=120)
        finally:
            if producer.poll() is None:
                os.killpg(producer.pid, signal.SIGKILL)
                producer.wait(30)
        elapsed = time.monotonic() - started
    finally:
        cluster.start(*lost)
    assert producer.returncode != 0, "the producer reported success with one broker of three"
    assert "ProducerStalled" in err and f"for {SEND_TIMEOUT_S} s (--send-timeout)" in err, err[-4000:]
    # A Spark cold start (~15 s here) plus the send timeout and the cancel, not an endless wait.
    assert elapsed < 90, f"the producer took {elapsed:.0f} s to fail"
    cluster.wait_for(TOPIC, all_in_sync, "the two nodes back in sync")
    assert survivor.process is not None and survivor.process.poll() is None
    # A refused write can still land: the leader appended it before waiting for replicas it could not
    # drop from the ISR without a quorum, and the returning followers copied it. Nothing acknowledged
    # is lost; what landed is only what was sent (a rerun sends it again: the consumer writes the same
    # points once per series+time).
    after = offsets(cluster.bootstrap_servers, TOPIC, "latest", cluster.admin_config)
    landed = topic_messages(cluster.bootstrap_servers, TOPIC, sum(after.values()), cluster.admin_config)
    console = [m for m in landed if m.startswith(b"lost-")]
    assert set(console) <= {f"lost-{i}".encode() for i in range(20)}
    assert sum(after.values()) - sum(before.values()) - len(console) <= 200
    print(f"two brokers down: failed after {elapsed:.1f} s; landed {len(console)} console records, "
          f"{sum(after.values()) - sum(before.values()) - len(console)} of the job's")


def voter_directories(status: str) -> dict[int, str]:
    """Node id -> directory id of each voter in `kafka-metadata-quorum describe --status`."""
    (voters,) = re.findall(r"^CurrentVoters:\s*(.*)$", status, re.MULTILINE)
    return {int(node): directory for node, directory in
            re.findall(r'\{"id":\s*(\d+),\s*"directoryId":\s*"([^"]+)"', voters)}


# Node 3 fetches the test topic back at this rate (bytes/s) until it is a voter again while the procedure
# still runs: then the test lifts the throttle. About 0.7 MB to fetch, 4 kB a request: a procedure that
# stops waiting once node 3 votes leaves its partitions under-replicated at the check right after it.
REPLICA_CATCH_UP_RATE = 1_000
# The procedure's last line once node 3 votes again takes well under this, unless it waits.
WAITING_S = 10


def unthrottle(cluster: Cluster) -> None:
    done = run_tool("kafka-configs.sh", "--bootstrap-server", cluster.bootstrap_servers, *cluster.login(),
                    "--alter", "--entity-type",
                    "brokers", "--entity-name", "3", "--delete-config", "follower.replication.throttled.rate")
    assert done.returncode == 0, done.stderr


def voted_back(cluster: Cluster, old_directory: str) -> bool:
    """Node 3 is a voter under another directory id (a controller still loading its metadata may refuse
    the question: not yet, then)."""
    status = run_tool("kafka-metadata-quorum.sh", "--bootstrap-controller", cluster.controllers,
                      *cluster.login(controller=True), "describe", "--status")
    return status.returncode == 0 and voter_directories(status.stdout).get(3, old_directory) != old_directory


def test_a_broker_whose_disk_is_lost_comes_back_as_a_voter_with_a_new_directory_id(cluster, influxdb,
                                                                                     tmp_path):
    """scripts/replace-broker.sh, the runbook's procedure, with the test cluster's driver. What each check
    catches when a step of the procedure is skipped (verified by hand on a real cluster):
    - no `remove`: add-controller is refused (DuplicateVoterException: node 3 is still a voter under its
      old directory id), the procedure fails: the return code check; the voters check too;
    - no new directory id (node 3 formatted with --initial-controllers again, its old directory id):
      node 3 never shows up as an observer under a new id, the procedure's `add` times out and fails: the
      return code check; the voters check too (node 3 is no voter);
    - no `wait`: the procedure ends as node 3 votes again, before the test lifts the throttle on its
      partitions (fetched at most 4 kB per partition and request: cluster-server.properties): the
      under-replicated check right after the procedure (ISR 1,2 of replicas 1,2,3)."""
    half, bound = 1200, 600
    bootstrap = cluster.bootstrap_servers
    # A topic of its own, as the stack's readings topic is made (three replicas, two in sync).
    (readings, *_dead_letters) = stack_topics(SETTINGS)
    topic = dataclasses.replace(readings, name=REPLACE_TOPIC)
    done = cluster.create_topics(topic)
    assert done.returncode == 0, done.stdout + done.stderr
    for entity, config in (("brokers", f"follower.replication.throttled.rate={REPLICA_CATCH_UP_RATE}"),
                           ("topics", "follower.replication.throttled.replicas=*")):
        name = "3" if entity == "brokers" else topic.name
        throttle = run_tool("kafka-configs.sh", "--bootstrap-server", bootstrap, *cluster.login(), "--alter",
                            "--entity-type", entity, "--entity-name", name, "--add-config", config)
        assert throttle.returncode == 0, throttle.stderr
    throttled = True
    lost = cluster.node(3)
    # The quorum is dynamic (KIP-853): three voters, each under the directory id it was formatted with.
    before = voter_directories(cluster.quorum("describe", "--status"))
    assert before == {node.node.node_id: node.directory_id for node in cluster.nodes}
    old_directory = before[3]

    producing = cluster.job_login(PRODUCER_USER)
    produce_to_kafka(bootstrap, topic.name, half, login=producing)
    consumer = consumer_for(tmp_path, cluster, topic.name, influxdb, max_offsets_per_trigger=bound,
                            trigger="1s", login=cluster.job_login(CONSUMER_USER))
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= bound)
        # Node 3's VM dies and its disk is gone: its log directory is empty when it comes back.
        lost.kill()
        shutil.rmtree(lost.workdir / "data")
        (lost.workdir / "data").mkdir()
        produce_to_kafka(bootstrap, topic.name, half, start_time="2026-01-01T00:02:00Z", login=producing)
        started = time.monotonic()
        with ThreadPoolExecutor(1) as pool:
            procedure, voter_since = pool.submit(cluster.replace_broker, 3), None
            while not procedure.done():
                if voter_since is None and voted_back(cluster, old_directory):
                    voter_since = time.monotonic()
                # Still running well after node 3 voted again: the procedure waits for its partitions.
                if voter_since is not None and time.monotonic() - voter_since > WAITING_S:
                    unthrottle(cluster)
                    throttled = False
                    break
                time.sleep(1)
            done = procedure.result()
        took = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr[-6000:]
        # Right after the procedure: node 3 votes under the directory id of its new log ...
        status = cluster.quorum("describe", "--status")
        new_directory = lost.directory_id
        assert new_directory != old_directory
        assert voter_directories(status) == {1: before[1], 2: before[2], 3: new_directory}, status
        replication = cluster.quorum("describe", "--replication")
        # (a voter that fetches: its lag may be a record or two while the ISR changes are written)
        assert re.search(rf"^3\s+{re.escape(new_directory)}\s+.*\b(Follower|Leader)\b", replication,
                         re.MULTILINE), replication
        # ... and every partition has its three replicas in sync again.
        under = run_tool("kafka-topics.sh", "--bootstrap-server", bootstrap, *cluster.login(), "--describe",
                         "--under-replicated-partitions")
        assert under.returncode == 0 and under.stdout.strip() == "", under.stdout + under.stderr
        assert all_in_sync(cluster.describe(topic.name))
        consumer.wait_for(lambda s: consumer.records(s) >= 2 * half and s.get(BEHIND) == 0, timeout=400)
    finally:
        consumer.stop()
        if throttled:
            unthrottle(cluster)
    print(f"replace-broker.sh took {took:.0f} s:\n{done.stderr}")
    # Every reading once: the log holds each message sent once, the sink what the oracle computes.
    assert sum(offsets(bootstrap, topic.name, "latest", cluster.admin_config).values()) == 2 * half
    sent = topic_messages(bootstrap, topic.name, 2 * half, cluster.admin_config)
    points, windows, _quarantined = expected_points(sent)
    assert_matches(influxdb, points, windows)
