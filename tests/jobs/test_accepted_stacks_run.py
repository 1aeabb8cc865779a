"""A stack the settings accept runs: a property over the documented ranges of the jobs' settings.

For every configuration hypothesis draws that `parse_settings` accepts, the jobs' command lines are
built by the builder both targets call (infra/job_commands.py), the jobs' own parsers accept them, and
the consumer's query, as that command line configures it, is analysed by Spark and commits a batch
over a few readings. What settings accept and Spark or the jobs refuse at start would fail here;
without the window/slide check Spark's analysis does, without the read-cap check the lag property does.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from hydrostream_jobs.cli import parse_consumer_args, parse_producer_args
from hydrostream_jobs.consumer_job import CONSUMER_QUERY, start_query
from hydrostream_jobs.metrics import ConsumerMetrics
from hydrostream_jobs.progress import BatchLog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from infra.job_commands import TokenSource, consumer_args, kafka_login, producer_args
from infra.model import derive
from infra.settings import SettingsError, parse_settings

GCP = {"gcp:project": "hydrostream-dev", "gcp:region": "europe-west1", "gcp:zone": "europe-west1-b"}
UNITS = {"s": 1, "m": 60, "h": 3600}
BATCH_TIMEOUT_SECONDS = 120
# Durations across what a stack file may hold: seconds to a day, as an operator writes them.
DURATIONS = st.builds(lambda amount, unit: f"{amount}{unit}",
                      st.sampled_from([1, 2, 5, 10, 15, 30, 45, 90]), st.sampled_from(list(UNITS)))


def seconds(duration: str) -> int:
    return int(duration[:-1]) * UNITS[duration[-1]]


@st.composite
def jobs_sections(draw) -> dict:
    """A `hydrostream:jobs` section: each key set or left to its default, within the documented ranges."""
    candidates = {
        "rate": st.integers(1, 40_000),
        "farms": st.integers(1, 1000),
        "devices_per_farm": st.integers(1, 10_000),
        "trigger": st.one_of(st.just("available-now"), DURATIONS),
        "window": DURATIONS,
        "slide": DURATIONS,
        "watermark": DURATIONS,
        "max_offsets_per_trigger": st.integers(1, 100_000_000),
    }
    return {key: draw(value) for key, value in candidates.items() if draw(st.booleans())}


def readings(count: int) -> str:
    return "".join(json.dumps({
        "farm_id": "farm-01", "zone": "bay-1", "device_id": f"hp-{device:04d}",
        "ts": f"2026-01-01T00:00:{device:02d}Z", "ph": 5.9, "ec_ms_cm": 1.6, "water_temp_c": 19.5,
        "air_temp_c": 22.0, "humidity_pct": 68.0, "light_ppfd": 400.0, "dissolved_oxygen_mg_l": 8.6,
    }) + "\n" for device in range(count))


def committed_batches(checkpoint: Path) -> list[int]:
    """The batch ids in the query's commit log, read as files (not through the job)."""
    commits = checkpoint / CONSUMER_QUERY / "commits"
    return sorted(int(p.name) for p in commits.iterdir() if p.name.isdigit()) if commits.is_dir() else []


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accepted-stacks")
    (folder / "input").mkdir()
    (folder / "input" / "readings.json").write_text(readings(6))
    return folder


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(jobs=jobs_sections())
@example(jobs={"window": "1m", "slide": "5m"})
@example(jobs={"max_offsets_per_trigger": 10})
@example(jobs={"rate": 2000, "trigger": "90s"})
@example(jobs={"window": "1h", "slide": "1m", "watermark": "1s", "trigger": "1s"})
@example(jobs={"trigger": "available-now", "window": "10s", "slide": "10s"})
def test_every_accepted_jobs_section_builds_parses_and_runs(spark, workspace, jobs):
    try:
        accepted = derive(parse_settings("dev", {**GCP, "hydrostream:jobs": jobs})).jobs.flags
    except SettingsError:
        return  # refused before any resource: nothing of it runs
    root = "gs://checkpoints/releases"
    consumer = parse_consumer_args(consumer_args(
        accepted, bootstrap_servers="10.0.0.2:9092", influx_url="http://10.0.0.3:8086", influx_org="hydro",
        influx_bucket="hydro", token=TokenSource(file="/run/token"), checkpoint_root=f"{root}/r1",
        handover_root=root, kafka_login=kafka_login("hydro-consumer", file="/run/c")))
    producer = parse_producer_args(producer_args(
        accepted, bootstrap_servers="10.0.0.2:9092", checkpoint_root=f"{root}/r1",
        kafka_login=kafka_login("hydro-producer", file="/run/p")))
    assert (consumer.kafka_user, producer.kafka_user) == ("hydro-consumer", "hydro-producer")
    assert (producer.rate, producer.farms, producer.devices_per_farm) == (
        accepted.rate, accepted.farms, accepted.devices_per_farm)

    # The lag cannot grow: a trigger's readings fit in the read cap twice, so a backlog drains.
    if consumer.trigger != "available-now":
        per_trigger = accepted.rate * seconds(accepted.trigger)
        assert consumer.max_offsets_per_trigger - per_trigger >= per_trigger, (jobs, consumer)

    # The consumer's query as configured (window, slide, watermark, trigger), over files and a noop sink.
    case = workspace / f"case-{len(list(workspace.glob('case-*')))}"
    local = dataclasses.replace(consumer, source="files", input_path=str(workspace / "input"), sink="noop",
                                handover_from=None, checkpoint_location=str(case / "checkpoint"),
                                dead_letter_path=str(case / "dead-letter"), metrics_port=0)
    spark.streams.resetTerminated()
    query = start_query(spark, local, ConsumerMetrics(), BatchLog())
    try:
        # The first batch starts at once whatever the trigger; the test waits for its commit, not the next.
        deadline = time.monotonic() + BATCH_TIMEOUT_SECONDS
        while not committed_batches(case / "checkpoint") and query.isActive and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        query.stop()
    assert query.exception() is None, jobs
    assert committed_batches(case / "checkpoint")[:1] == [0], jobs
