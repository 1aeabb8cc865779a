"""Faults on the real Kafka path, each ending with every series+time in the sink once (or a loud failure)."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from infra.services import kafka as kafka_service
from tests.jobs import oracle
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.conftest import create_topics
from tests.kafka.pipeline import (
    Consumer,
    committed_offsets,
    dead_letters,
    fleet_messages,
    initial_offsets,
    offsets,
    produce_to_kafka,
    send_lines,
    timestamped_offsets,
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


def test_a_consumer_killed_mid_stream_resumes_from_its_checkpoint(broker, topic, influxdb, tmp_path):
    count, bound = 2400, 200
    send_lines(broker.bootstrap_servers, topic, fleet_messages(count))
    sent = topic_messages(broker.bootstrap_servers, topic, count)
    readings, windows, _quarantined = expected_points(sent)

    consumer = consumer_for(tmp_path, broker, topic, influxdb, max_offsets_per_trigger=bound)
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= 2 * bound)
    finally:
        assert consumer.signal(signal.SIGKILL) == -signal.SIGKILL
    resume_from = last_committed_end(consumer, topic)
    assert 0 < resume_from < count, "the kill must land mid-stream"

    # Larger batches from here: the checkpoint, not the options, says where the restart resumes.
    consumer.max_offsets_per_trigger = 1000
    consumer.start()
    try:
        # Until Spark committed every offset: a consumer that started over would have read more by then.
        scrapes = consumer.wait_for(lambda _s: last_committed_end(consumer, topic) == count)
    finally:
        consumer.stop()
    # The restarted query read exactly what the killed one had not committed: the checkpoint was reused.
    assert consumer.records(scrapes[-1]) == count - resume_from
    assert_matches(influxdb, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


def test_the_consumer_rides_out_a_broker_outage_longer_than_a_trigger(broker, topic, influxdb, tmp_path):
    half, bound = 1200, 600
    send_lines(broker.bootstrap_servers, topic, fleet_messages(half))
    consumer = consumer_for(tmp_path, broker, topic, influxdb, max_offsets_per_trigger=bound, trigger="1s")
    consumer.start()
    try:
        consumer.wait_for(lambda s: consumer.records(s) >= bound)
        broker.stop()
        time.sleep(10)  # ten triggers without a broker
        broker.start()
        send_lines(broker.bootstrap_servers, topic, fleet_messages(half, start_time="2026-01-01T00:02:00Z"))
        consumer.wait_for(caught_up(consumer, 2 * half))
    finally:
        consumer.stop()
    sent = topic_messages(broker.bootstrap_servers, topic, 2 * half)
    readings, windows, _quarantined = expected_points(sent)
    assert_matches(influxdb, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)


def test_a_restarted_producer_sends_again_and_the_sink_stays_exact(broker, topic, influxdb, tmp_path):
    count = 1200
    produce_to_kafka(broker.bootstrap_servers, topic, count)
    produce_to_kafka(broker.bootstrap_servers, topic, count)  # the restart: its whole range again
    assert sum(offsets(broker.bootstrap_servers, topic, "latest").values()) == 2 * count
    sent = topic_messages(broker.bootstrap_servers, topic, 2 * count)
    assert all(copies % 2 == 0 for copies in Counter(sent).values())

    consumer = consumer_for(tmp_path, broker, topic, influxdb, max_offsets_per_trigger=1000)
    consumer.start()
    try:
        consumer.wait_for(caught_up(consumer, 2 * count))
    finally:
        consumer.stop()
    readings, windows, quarantined = expected_points(sent)
    assert 2 * len(readings) == len(sent) - quarantined  # every valid reading twice in the topic, once here
    assert_matches(influxdb, readings, windows)
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


def stored(influxdb) -> tuple[dict, dict]:
    """Every point of the bucket: readings, window statistics."""
    return influxdb.measurement("sensor_readings"), influxdb.measurement("sensor_window_stats")


def test_data_deleted_by_retention_before_it_was_read_fails_the_consumer_loudly(broker, influxdb, tmp_path):
    topic, bootstrap = "hydro.test.retention", broker.bootstrap_servers
    # One partition; retention is changed the way a stack changes it: the topic script run again.
    keep, expire = kafka_service.TopicSpec(topic, 1, 3_600_000), kafka_service.TopicSpec(topic, 1, 2000)
    create_topics(broker, keep)
    read = [reading(i, 1) for i in range(200)]
    lost = [reading(i, 20) for i in range(200)]
    later = [reading(i, 40) for i in range(200)]

    send_lines(bootstrap, topic, read)
    consumer = consumer_for(tmp_path, broker, topic, influxdb, trigger="available-now")
    consumer.start()
    assert consumer.wait_exit() == 0, consumer.log()
    stored_before = stored(influxdb)
    assert len(stored_before[0]) == len(read)

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
    assert stored(influxdb) == stored_before

    # The operator's documented recovery: acknowledge the loss once, then the default again.
    consumer.fail_on_data_loss = False
    consumer.start()
    assert consumer.wait_exit() == 0, consumer.log()
    readings, windows, _ = expected_points([m.encode() for m in read + later])
    assert_matches(influxdb, readings, windows)


def fresh_reading(i: int, now_ms: int) -> str:
    """A valid reading stamped now (a producer's event time trails the Kafka record timestamp)."""
    instant = datetime.fromtimestamp((now_ms + i) / 1000, tz=UTC)
    return json.dumps({
        "farm_id": "farm-01", "zone": "bay-1", "device_id": f"hp-{i % 4}",
        "ts": instant.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "ph": 6.0 + i / 100, "ec_ms_cm": 1.5, "water_temp_c": 20.0, "air_temp_c": 22.0, "humidity_pct": 60.0,
        "light_ppfd": 300.0, "dissolved_oxygen_mg_l": 8.0,
    })


def test_a_new_release_starts_where_the_old_one_stood_less_a_window_and_the_watermark(
    broker, topic, influxdb, tmp_path
):
    # Rounds 8 s apart: longer than window + watermark, so the first round is older than the start.
    window_s, slide_s, watermark_s, per_round, gap_s = 4, 2, 2, 40, 8
    bootstrap, root = broker.bootstrap_servers, tmp_path / "releases"
    sent: list[str] = []

    def send_round() -> None:
        lines = [fresh_reading(i, time.time_ns() // 1_000_000) for i in range(per_round)]
        send_lines(bootstrap, topic, lines)
        sent.extend(lines)

    def release(name: str) -> Consumer:
        return Consumer(root / name, bootstrap, topic, influxdb.url, influxdb.token, influxdb.org,
                        influxdb.bucket, window=f"{window_s}s", slide=f"{slide_s}s",
                        watermark=f"{watermark_s}s", handover_from=root)

    def committed_all(consumer: Consumer):
        # The sink's counters move before Spark commits the batch (foreachBatch runs first): a release
        # stopped in between has committed nothing, and its successor rightly reads that batch again.
        return lambda _s: last_committed_end(consumer, topic) == len(sent)

    send_round()
    time.sleep(gap_s)
    send_round()
    old = release("old")
    old.start()
    try:
        old.wait_for(committed_all(old))
    finally:
        old.stop()
    # Where the old release stood: the largest event time it read (its watermark + the delay).
    position_ms = max(oracle.event_time_ns(json.loads(line)["ts"]) for line in sent) // 1_000_000
    start_ms = position_ms - (window_s + watermark_s) * 1000
    send_round()  # traffic while the release changes hands

    new = release("new")
    new.start()
    try:
        new.wait_for(lambda s: new.records(s) > 0)
        send_round()  # and while the new release runs
        scrapes = new.wait_for(committed_all(new))
    finally:
        new.stop()
    assert json.loads((new.checkpoint / "handover.json").read_text())["starting_timestamp_ms"] == start_ms

    # The new release started, per partition, at the first record stamped at or after the start.
    records = timestamped_offsets(bootstrap, topic, len(sent))
    latest = offsets(bootstrap, topic, "latest")
    expected_start = {p: min((o for q, o, ts in records if q == p and ts >= start_ms), default=latest[p])
                      for p in latest}
    assert initial_offsets(new.checkpoint, topic) == expected_start
    assert sum(expected_start.values()) >= per_round, "the first round is older than the handover bound"
    assert new.records(scrapes[-1]) == len(sent) - sum(expected_start.values())

    # No gap and no duplicate: the two releases together wrote every point once, windows whole.
    valid = [reading for reason, reading in map(oracle.check, (m.encode() for m in sent)) if reason is None]
    assert len(valid) == len(sent)
    readings, _, _ = expected_points([m.encode() for m in sent])
    windows = {("sensor_window_stats", (("farm_id", farm), ("zone", zone)), end): stats
               for (farm, zone, end), stats in oracle.window_stats(valid, window_s, slide_s).items()}
    assert_matches(influxdb, readings, windows)
