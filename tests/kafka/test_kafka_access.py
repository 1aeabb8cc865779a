"""Kafka with authentication and ACLs, on a real KRaft node configured as the stacks configure theirs
(infra/services/kafka.py `sasl_env`, the brokers' kafka-sasl-files.sh, kafka-format.sh and
kafka-access.sh): the jobs deliver with their own logins, and every other login or request is refused."""

from __future__ import annotations

import subprocess

import pytest

from infra.gcp.kafka import topics as stack_topics
from infra.services import kafka as kafka_service
from infra.settings import KafkaSettings
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.broker import run_tool
from tests.kafka.cluster import Cluster, Logins
from tests.kafka.pipeline import Consumer, command, job_env, produce_to_kafka, producer_args, topic_messages

pytestmark = pytest.mark.slow

READINGS = "hydro.readings"
PRODUCER, CONSUMER = kafka_service.PRODUCER_USER, kafka_service.CONSUMER_USER
# A client that is refused waits for nothing long: a refused login or request answers at once, a client
# without SASL gets no answer at all (the listener waits for its handshake) and times out.
SHORT = "request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n"


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """One node formatted and configured as a stack's broker, with the stack's topics, users and ACLs."""
    workdir = tmp_path_factory.mktemp("kafka-access")
    cluster = Cluster(workdir, min_insync_replicas=1, racks=("zone-a",), logins=Logins.create(workdir))
    cluster.format()
    try:
        cluster.start()
        # What the stacks' brokers run at boot, as the stacks' brokers run it.
        done = cluster.set_up(*stack_topics(KafkaSettings(partitions=2)))
        assert done.returncode == 0, done.stderr[-3000:]
        yield cluster
    finally:
        cluster.stop()


def config(cluster: Cluster, user: str, password: str | None = None):
    path = cluster.logins.client_config(user, password)
    path.write_text(path.read_text() + SHORT)
    return path


def refused(output: str) -> bool:
    """Whether a Kafka tool's output reports an authorization refusal."""
    return "authorization failed" in output.lower() or "not authorized to access" in output.lower()


def tool(cluster: Cluster, name: str, *args: str):
    return run_tool(name, "--bootstrap-server", cluster.bootstrap_servers, *args, timeout=120)


def test_the_jobs_deliver_every_reading_once_with_their_own_logins(secured, influxdb, tmp_path):
    count = 600
    logins = secured.logins
    produce_to_kafka(secured.bootstrap_servers, READINGS, count, login=tuple(logins.job_args(PRODUCER)))
    sent = topic_messages(secured.bootstrap_servers, READINGS, count, config=secured.logins.admin_config)
    readings, windows, _quarantined = expected_points(sent)

    consumer = Consumer(tmp_path / "consumer", secured.bootstrap_servers, READINGS, influxdb.url,
                        influxdb.token, influxdb.org, influxdb.bucket, login=tuple(logins.job_args(CONSUMER)))
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= count)
    finally:
        consumer.stop()
    assert_matches(influxdb, readings, windows)
    # The password went through a file: it is in neither job's command line nor the consumer's log.
    password = secured.logins.password_file(CONSUMER).read_text().strip()
    assert password not in " ".join(consumer.argv()) and password not in consumer.log(tail=None)


def test_the_consumer_cannot_write_delete_or_alter_a_topic(secured):
    as_consumer = config(secured, CONSUMER)
    sent = run_tool("kafka-console-producer.sh", "--bootstrap-server", secured.bootstrap_servers,
                    "--producer.config", str(as_consumer), "--topic", READINGS, input_text="not yours\n")
    assert refused(sent.stderr), sent.stderr
    deleted = tool(secured, "kafka-topics.sh", "--command-config", str(as_consumer), "--delete",
                   "--topic", READINGS)
    assert deleted.returncode != 0 and "Topic authorization failed" in deleted.stdout + deleted.stderr
    altered = tool(secured, "kafka-configs.sh", "--command-config", str(as_consumer), "--alter",
                   "--entity-type", "topics", "--entity-name", READINGS, "--add-config", "retention.ms=1000")
    assert altered.returncode != 0 and "authoriz" in (altered.stdout + altered.stderr).lower()
    # Nothing changed: the admin still lists the topic with its stack retention.
    described = tool(secured, "kafka-configs.sh", "--command-config", str(secured.logins.admin_config),
                     "--describe", "--entity-type", "topics", "--entity-name", READINGS)
    assert "retention.ms=1000" not in described.stdout and "retention.ms=" in described.stdout


def test_the_producer_may_not_read_or_touch_the_dead_letter_topic(secured):
    as_producer = config(secured, PRODUCER)
    # By assigned partition, as Spark reads: no consumer group, so the refusal is the topic's.
    read = run_tool("kafka-console-consumer.sh", "--bootstrap-server", secured.bootstrap_servers,
                    "--consumer.config", str(as_producer), "--topic", READINGS, "--partition", "0",
                    "--offset", "earliest", "--max-messages", "1", "--timeout-ms", "10000", timeout=120)
    assert refused(read.stderr), read.stderr
    dead = "hydro.readings.dead-letter"
    sent = run_tool("kafka-console-producer.sh", "--bootstrap-server", secured.bootstrap_servers,
                    "--producer.config", str(as_producer), "--topic", dead, input_text="x\n")
    assert refused(sent.stderr), sent.stderr


def test_a_wrong_or_missing_password_is_refused(secured, tmp_path):
    wrong = config(secured, PRODUCER, password="wrongpassword123")
    listed = tool(secured, "kafka-topics.sh", "--command-config", str(wrong), "--list")
    assert listed.returncode != 0 and "Authentication failed" in listed.stdout + listed.stderr
    plain = tmp_path / "plain.properties"
    plain.write_text(SHORT)
    listed = tool(secured, "kafka-topics.sh", "--command-config", str(plain), "--list")
    assert listed.returncode != 0 and READINGS not in listed.stdout

    # A job with the wrong user's password fails, naming the refusal.
    bad = tmp_path / "password"
    bad.write_text("wrongpassword123\n")
    done = _producer(secured, ["--kafka-user", PRODUCER, "--kafka-password-file", str(bad)])
    assert done.returncode != 0 and "Authentication failed" in done.stderr


def test_the_producer_job_as_the_consumer_is_refused_its_write(secured):
    done = _producer(secured, secured.logins.job_args(CONSUMER))
    # Refused at its first request: an idempotent producer needs a topic it may write.
    assert done.returncode != 0 and "AuthorizationException" in done.stderr


def _producer(cluster: Cluster, login: list[str]) -> subprocess.CompletedProcess:
    """producer.py --count 20 with `login`, run to its end whatever it returns."""
    return subprocess.run(
        command("producer.py", "--sink", "kafka", "--bootstrap-servers", cluster.bootstrap_servers, "--topic",
                READINGS, *producer_args(20), "--send-timeout", "20", *login),
        env=job_env(), capture_output=True, text=True, timeout=300)
