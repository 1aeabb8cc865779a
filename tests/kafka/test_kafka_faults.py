"""Faults on the real Kafka path, each ending with every series+time in the sink once (or a loud failure)."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

import pytest

from infra.render import cloud_init
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.conftest import create_topics
from tests.kafka.pipeline import (
    Consumer,
    committed_offsets,
    dead_letters,
    offsets,
    produce_to_kafka,
    send_lines,
    topic_messages,
)
from tests.kafka.test_kafka_end_to_end import BEHIND, consumer_for, expected_dead_letters

pytestmark = pytest.mark.slow


def caught_up(consumer: Consumer, at_least: int):
    """A metrics predicate: this process consumed at least `at_least` and is not behind."""
    return lambda s: consumer.records(s) >= at_least and s.get(BEHIND) == 0


def last_committed_end(consumer: Consumer, topic: str) -> int:
    """Messages up to the end of the last batch the query committed (what a restart must skip)."""
    commits = [int(p.name) for p in (consumer.checkpoint / "consumer" / "commits").glob("[0-9]*")]
    if not commits:
        return 0
    return sum(committed_offsets(consumer.checkpoint, topic)[max(commits)].values())


def test_a_consumer_killed_mid_stream_resumes_from_its_checkpoint(broker, topic, influx, tmp_path):
    count, bound = 2400, 200
    produce_to_kafka(broker.bootstrap_servers, topic, count)
    sent = topic_messages(broker.bootstrap_servers, topic, count)
    readings, windows, _quarantined = expected_points(sent)

    consumer = consumer_for(tmp_path, broker, topic, influx, max_offsets_per_trigger=bound)
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= 2 * bound)
    finally:
        assert consumer.signal(signal.SIGKILL) == -signal.SIGKILL
    resume_from = last_committed_end(consumer, topic)
    assert 0 < resume_from < count, "the kill must land mid-stream"

    consumer.start()
    try:
        # The gauge reads 0 until the source's first report: wait for the records as well.
        consumer.wait_for(caught_up(consumer, count - resume_from))
        time.sleep(5)  # a few more triggers: a consumer that started over would still be reading
        scrapes = consumer.wait_for(lambda s: True)
    finally:
        consumer.stop()
    # The restarted query read exactly what the killed one had not committed: the checkpoint was reused.
    assert consumer.records(scrapes[-1]) == count - resume_from
    assert_matches(influx, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


def test_the_consumer_rides_out_a_broker_outage_longer_than_a_trigger(broker, topic, influx, tmp_path):
    half, bound = 1200, 200
    produce_to_kafka(broker.bootstrap_servers, topic, half)
    consumer = consumer_for(tmp_path, broker, topic, influx, max_offsets_per_trigger=bound, trigger="1s")
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= bound)
        broker.stop()
        time.sleep(10)  # ten triggers without a broker
        broker.start()
        produce_to_kafka(broker.bootstrap_servers, topic, half, start_time="2026-01-01T00:02:00Z")
        consumer.wait_for(caught_up(consumer, 2 * half))
    finally:
        consumer.stop()
    sent = topic_messages(broker.bootstrap_servers, topic, 2 * half)
    readings, windows, _quarantined = expected_points(sent)
    assert_matches(influx, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


def test_a_restarted_producer_sends_again_and_the_sink_stays_exact(broker, topic, influx, tmp_path):
    count = 1200
    produce_to_kafka(broker.bootstrap_servers, topic, count)
    produce_to_kafka(broker.bootstrap_servers, topic, count)  # the restart: its whole range again
    assert sum(offsets(broker.bootstrap_servers, topic, "latest").values()) == 2 * count
    sent = topic_messages(broker.bootstrap_servers, topic, 2 * count)
    assert all(copies % 2 == 0 for copies in Counter(sent).values())

    consumer = consumer_for(tmp_path, broker, topic, influx, max_offsets_per_trigger=1000)
    consumer.start()
    try:
        consumer.wait_for(caught_up(consumer, 2 * count))
    finally:
        consumer.stop()
    readings, windows, quarantined = expected_points(sent)
    assert 2 * len(readings) == len(sent) - quarantined  # every valid reading twice in the topic, once here
    assert_matches(influx, readings, windows)
    # Dead letters are per message: each copy of a malformed message is quarantined.
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


def reading(i: int, minute: int) -> str:
    """A valid reading of device i at a second of `minute` (2026-01-01)."""
    return json.dumps({
        "farm_id": "farm-01", "zone": "bay-1", "device_id": f"hp-{i % 4}",
        "ts": f"2026-01-01T00:{minute:02d}:{i % 60:02d}.{i:03d}Z",
        "ph": 6.0, "ec_ms_cm": 1.5, "water_temp_c": 20.0, "air_temp_c": 22.0, "humidity_pct": 60.0,
        "light_ppfd": 300.0, "dissolved_oxygen_mg_l": 8.0,
    })


def test_data_deleted_by_retention_before_it_was_read_fails_the_consumer_loudly(broker, influx, tmp_path):
    topic, bootstrap = "hydro.test.retention", broker.bootstrap_servers
    # One partition; retention is changed the way a stack changes it: the topic script run again.
    keep, expire = cloud_init.TopicSpec(topic, 1, 3_600_000), cloud_init.TopicSpec(topic, 1, 2000)
    create_topics(broker, keep)
    read = [reading(i, 1) for i in range(200)]
    lost = [reading(i, 20) for i in range(200)]
    later = [reading(i, 40) for i in range(200)]

    send_lines(bootstrap, topic, read)
    consumer = consumer_for(tmp_path, broker, topic, influx, trigger="available-now")
    consumer.start()
    assert consumer.wait_exit() == 0, consumer.log()
    stored_before = dict(influx.points)
    assert len(influx.measurement("sensor_readings")) == len(read)

    send_lines(bootstrap, topic, lost)
    create_topics(broker, expire)
    deadline, expired = time.time() + 60, 0
    while expired < len(read) + len(lost) and time.time() < deadline:
        time.sleep(1)
        expired = sum(offsets(bootstrap, topic, "earliest").values())
    assert expired == len(read) + len(lost), "retention did not run"
    create_topics(broker, keep)
    send_lines(bootstrap, topic, later)

    # failOnDataLoss=true (the default): the query stops with Spark's data-loss error, writes nothing.
    consumer.start()
    assert consumer.wait_exit() != 0
    assert "Some data may have been lost" in consumer.log(tail=None), consumer.log()
    assert influx.points == stored_before

    # The operator's documented recovery: acknowledge the loss once, then the default again.
    consumer.fail_on_data_loss = False
    consumer.start()
    assert consumer.wait_exit() == 0, consumer.log()
    readings, windows, _ = expected_points([m.encode() for m in read + later])
    assert_matches(influx, readings, windows)
