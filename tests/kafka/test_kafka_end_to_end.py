"""producer.py --sink kafka -> a real broker -> consumer.py --source kafka --sink influxdb (a real InfluxDB,
read back with Flux), real connector."""

from __future__ import annotations

from collections import Counter

import pytest

from infra import disks
from tests.jobs import oracle
from tests.jobs.test_jobs_end_to_end import assert_matches, expected_points
from tests.kafka.pipeline import Consumer, committed_offsets, dead_letters, produce_to_kafka, topic_messages

BEHIND = ("hydro_consumer_kafka_offsets_behind_latest", ())


def consumer_for(tmp_path, broker, topic, influx, **options) -> Consumer:
    """A consumer of `topic` writing into `influx` (a real bucket, or the fake), its state under tmp_path."""
    return Consumer(tmp_path / "consumer", broker.bootstrap_servers, topic, influx.url, influx.token,
                    influx.org, influx.bucket, **options)


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def expected_dead_letters(sent: list[bytes]) -> Counter:
    """(raw, reason) of every message the oracle rejects, as the producer sent them."""
    reasons = ((m, oracle.check(m)[0]) for m in sent)
    return Counter((m.decode("utf-8"), reason) for m, reason in reasons if reason is not None)


@pytest.mark.slow
def test_every_message_goes_through_the_broker_once_with_independent_statistics(
    broker, topic, influxdb, tmp_path
):
    count, bound = 3000, 600
    produce_to_kafka(broker.bootstrap_servers, topic, count)
    sent = topic_messages(broker.bootstrap_servers, topic, count)
    # What the plan's disk fill counts a reading as (infra/disks.py), measured again on the broker's log.
    stored = sum(path.stat().st_size for path in (broker.workdir / "data").glob(f"{topic}-*/*.log"))
    assert stored / count == pytest.approx(disks.KAFKA_BYTES_PER_READING, rel=0.15)
    readings, windows, quarantined = expected_points(sent)
    assert quarantined > 50 and len(readings) > 2800

    consumer = consumer_for(tmp_path, broker, topic, influxdb, max_offsets_per_trigger=bound)
    consumer.start()
    try:
        scrapes = consumer.wait_for(lambda s: consumer.records(s) >= count and s.get(BEHIND) == 0)
    finally:
        consumer.stop()

    assert_matches(influxdb, readings, windows)
    letters = dead_letters(consumer.dead_letter_path)
    assert Counter((d["raw"], d["reason"]) for d in letters) == expected_dead_letters(sent)

    last = scrapes[-1]
    assert sample(last, "hydro_consumer_records_total", status="valid") == len(readings)
    assert sample(last, "hydro_consumer_records_total", status="quarantined") == quarantined
    assert sample(last, "hydro_consumer_points_written_total", measurement="sensor_readings") == len(readings)

    # The offset log is the query's own progress: each batch took at most maxOffsetsPerTrigger.
    batches = committed_offsets(consumer.checkpoint, topic)
    sizes, previous = [], {}
    for ends in batches:
        sizes.append(sum(end - previous.get(partition, 0) for partition, end in ends.items()))
        previous = ends
    assert sum(sizes) == count
    assert max(sizes) <= bound
    assert len([s for s in sizes if s]) >= count // bound
    # Before the last batch the source reported how far the biggest partition still was behind.
    behind = [s[BEHIND] for s in scrapes if BEHIND in s]
    assert 0 < max(behind) <= max(batches[-1].values())
    assert behind[-1] == 0
