"""Replay through the real command lines into a real InfluxDB (read back with Flux), faults through a
proxy in front of it, restarts and metrics."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.consumer_job import apply_query_conf, consumer_output, run
from hydrostream_jobs.metrics import ConsumerMetrics
from pyspark.sql import functions as F

from tests.jobs import oracle
from tests.jobs.conftest import LOCAL_MASTER, SHUFFLE_PARTITIONS
from tests.jobs.influx_fake import Fault

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENV = {
    **os.environ,
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_SUBMIT_ARGS": f"--conf spark.sql.shuffle.partitions={SHUFFLE_PARTITIONS} pyspark-shell",
}


def job(entry: str, *args: str, env: dict[str, str] = ENV) -> subprocess.CompletedProcess:
    command = [sys.executable, os.path.join(ROOT, "jobs", entry), *args, "--master", LOCAL_MASTER]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def produce_files(output: str, count: int, env: dict[str, str] = ENV) -> subprocess.CompletedProcess:
    """`producer.py --sink files` of `count` readings of a small fleet, some malformed, some faulty."""
    done = job(
        "producer.py",
        "--sink",
        "files",
        "--output-path",
        output,
        "--count",
        str(count),
        "--farms",
        "2",
        "--devices-per-farm",
        "5",
        "--seed",
        "11",
        "--rate",
        "10",
        "--malformed-share",
        "0.02",
        "--fault-share",
        "0.01",
        "--metrics-port",
        "0",
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def produced_messages(output: str) -> list[bytes]:
    """The message values the producer wrote under `output`, one per line."""
    messages = []
    for path in sorted(glob.glob(f"{output}/part-*")):
        with open(path, "rb") as handle:
            messages += handle.read().split(b"\n")[:-1]
    return messages


def produce(output: str, count: int) -> list[bytes]:
    produce_files(output, count)
    messages = produced_messages(output)
    assert len(messages) == count
    return messages


def consumer_argv(influx, tmp_path, input_path: str) -> list[str]:
    token_file = tmp_path / "token"
    token_file.write_text(f"{influx.token}\n")
    return [
        "--source",
        "files",
        "--input-path",
        input_path,
        "--sink",
        "influxdb",
        "--influx-url",
        influx.url,
        "--influx-org",
        influx.org,
        "--influx-bucket",
        influx.bucket,
        "--influx-token-file",
        str(token_file),
        "--dead-letter-path",
        str(tmp_path / "dlq"),
        "--checkpoint-location",
        str(tmp_path / "checkpoints"),
        "--trigger",
        "available-now",
        "--window",
        "5m",
        "--slide",
        "1m",
        "--watermark",
        "10m",
        "--metrics-port",
        "0",
        "--influx-batch-lines",
        "500",
    ]


def expected_points(messages: list[bytes]):
    checked = [oracle.check(m) for m in messages]
    valid = [reading for reason, reading in checked if reason is None]
    readings = {}
    for r in valid:
        tags = tuple(sorted((name, r[name]) for name in oracle.IDS))
        readings[("sensor_readings", tags, r["time_ns"])] = {n: r[n] for n in oracle.RANGES}
    windows = {
        ("sensor_window_stats", (("farm_id", farm), ("zone", zone)), end): stats
        for (farm, zone, end), stats in oracle.window_stats(valid, 300, 60).items()
    }
    return readings, windows, len(messages) - len(valid)


def assert_matches(influx, readings, windows):
    """What `influx` (a real bucket read with Flux, or the fake) holds is what the oracle computed, each
    field of the oracle's type (floats, but for the window counts: a field keeps one type forever)."""
    stored_readings = influx.measurement("sensor_readings")
    assert stored_readings == readings
    assert {type(value) for fields in stored_readings.values() for value in fields.values()} <= {float}
    stored = influx.measurement("sensor_window_stats")
    assert stored.keys() == windows.keys()
    for key, stats in windows.items():
        assert {n: type(v) for n, v in stored[key].items()} == {n: type(v) for n, v in stats.items()}, key
        for name, value in stats.items():
            assert stored[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (key, name)
    assert not getattr(influx, "rejected", [])


def dead_letters(tmp_path) -> list[dict]:
    records = []
    for path in glob.glob(f"{tmp_path}/dlq/batch=*/part-*"):
        with open(path, encoding="utf-8") as handle:
            records += [json.loads(line) for line in handle]
    return records


def committed_batches(checkpoint) -> list[int]:
    return sorted(int(path.name) for path in (checkpoint / "commits").iterdir() if path.name.isdigit())


@pytest.mark.slow
def test_replay_through_the_command_lines_matches_independent_statistics(influxd, influxdb, tmp_path):
    messages = produce(str(tmp_path / "input"), 3000)
    readings, windows, quarantined = expected_points(messages)
    assert quarantined > 0 and len(readings) > 2500

    done = job("consumer.py", *consumer_argv(influxdb, tmp_path, str(tmp_path / "input")))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_matches(influxdb, readings, windows)
    assert len(dead_letters(tmp_path)) == quarantined
    assert influxdb.token not in done.stdout + done.stderr
    # One folder read available-now is one micro-batch: no trailing batch without data.
    assert committed_batches(tmp_path / "checkpoints" / "consumer") == [0]

    writes = influxd.accepted_writes()
    again = job("consumer.py", *consumer_argv(influxdb, tmp_path, str(tmp_path / "input")))
    assert again.returncode == 0, again.stderr[-3000:]
    assert influxd.accepted_writes() == writes  # the checkpoint says everything was done
    assert_matches(influxdb, readings, windows)


@pytest.mark.slow
def test_the_producer_is_deterministic_under_its_seed(tmp_path):
    first = produce(str(tmp_path / "a"), 400)
    second = produce(str(tmp_path / "b"), 400)
    assert sorted(first) == sorted(second)
    reasons = [oracle.check(m)[0] for m in first]
    assert reasons.count(None) > 350
    farms_devices = {
        (json.loads(m)["farm_id"], json.loads(m)["device_id"])
        for m, r in zip(first, reasons, strict=True)
        if r is None
    }
    assert len(farms_devices) == 10


def write_input(tmp_path, count: int) -> tuple[str, list[bytes]]:
    messages = []
    for i in range(count):
        reading = {
            "farm_id": f"farm-{i % 2}",
            "zone": f"bay {i % 3}",
            "device_id": f"hp-{i % 7}",
            "ts": f"2026-01-01T00:{(i // 60) % 60:02d}:{i % 60:02d}.{i:03d}Z",
            "ph": 5 + (i % 30) / 10,
            "ec_ms_cm": 1.5,
            "water_temp_c": 20,
            "air_temp_c": 21.5,
            "humidity_pct": 60.0 + i % 5,
            "light_ppfd": 300.0,
            "dissolved_oxygen_mg_l": 8.0,
        }
        messages.append(json.dumps(reading).encode())
    messages += [b"not json", b'{"ph": "7"}']
    folder = tmp_path / "input"
    folder.mkdir()
    (folder / "part-0.txt").write_bytes(b"\n".join(messages) + b"\n")
    return str(folder), messages


def wait_until_quiet(influx, seconds: float) -> None:
    """Return once the endpoint has received no request for `seconds`."""
    seen, since = influx.requests, time.time()
    while time.time() - since < seconds:
        time.sleep(0.1)
        if influx.requests != seen:
            seen, since = influx.requests, time.time()


def timed_readings(tmp_path, ages_s: list[float]) -> str:
    """A folder with one valid reading per age: its event time that many seconds before now."""
    now = time.time()
    lines = []
    for i, age in enumerate(ages_s):
        moment = datetime.fromtimestamp(now - age, tz=UTC).isoformat(timespec="milliseconds")
        lines.append(json.dumps({
            "farm_id": "farm-1", "zone": "bay-1", "device_id": f"hp-{i}", "ts": moment, "ph": 6.0,
            "ec_ms_cm": 1.5, "water_temp_c": 20.0, "air_temp_c": 21.0, "humidity_pct": 60.0,
            "light_ppfd": 300.0, "dissolved_oxygen_mg_l": 8.0}))
    folder = tmp_path / "timed"
    folder.mkdir()
    (folder / "part-0.txt").write_text("\n".join(lines) + "\n")
    return str(folder)


@pytest.mark.slow
def test_the_freshness_counters_tell_on_time_from_late_readings(spark, influxd, influxdb, tmp_path):
    # 30 readings of now and 20 of an hour ago, against a 5-minute objective: the on-time ones reach
    # InfluxDB well within it even on a loaded machine, the late ones cannot.
    input_path = timed_readings(tmp_path, [0.0] * 30 + [3600.0] * 20)
    argv = [*consumer_argv(influxdb, tmp_path, input_path), "--freshness-objective", "5m"]
    writes = influxd.accepted_writes()
    metrics = run(spark, parse_consumer_args(argv), ConsumerMetrics())
    sample = metrics.registry.get_sample_value
    assert len(influxdb.measurement("sensor_readings")) == 50
    assert sample("hydro_consumer_points_written_total", {"measurement": "sensor_readings"}) == 50
    assert sample("hydro_consumer_readings_on_time_total") == 30
    assert sample("hydro_consumer_sink_errors_total") == 0
    assert sample("hydro_consumer_sink_write_attempts_total") == influxd.accepted_writes() - writes > 0


@pytest.mark.slow
def test_a_tighter_objective_counts_the_same_readings_late(spark, influxdb, tmp_path):
    """Control: the objective on the command line decides; 30-minute-old readings are late against 10m."""
    input_path = timed_readings(tmp_path, [1800.0] * 10 + [0.0] * 5)
    argv = [*consumer_argv(influxdb, tmp_path, input_path), "--freshness-objective", "10m"]
    metrics = run(spark, parse_consumer_args(argv), ConsumerMetrics())
    assert metrics.registry.get_sample_value("hydro_consumer_readings_on_time_total") == 5


@pytest.mark.slow
def test_faults_are_retried_and_an_outage_fails_loudly_then_recovers_without_duplicates(
    spark, influx_proxy, influxdb, tmp_path
):
    influx = influx_proxy  # the consumer writes through it; what it stored is read from `influxdb`
    input_path, messages = write_input(tmp_path, 1200)
    readings, windows, quarantined = expected_points(messages)
    args = parse_consumer_args([*consumer_argv(influx, tmp_path, input_path), "--influx-max-attempts", "3"])

    # An outage longer than the retries: the batch fails loudly instead of being dropped.
    influx.fail_next(*[Fault("status", 503)] * 50)
    failed = ConsumerMetrics()
    with pytest.raises(Exception, match="failed after 3 attempts"):
        run(spark, args, failed)
    # The failed batch counts as one failed attempt of one: an error ratio of 1.
    assert failed.registry.get_sample_value("hydro_consumer_sink_errors_total") == 1
    assert failed.registry.get_sample_value("hydro_consumer_sink_write_attempts_total") == 1
    # The failed batch's other task may still be retrying in its Python worker until Spark kills it:
    # let it finish, or it takes one of the faults scripted below.
    wait_until_quiet(influx, seconds=3)
    influx.faults.clear()

    # Recovery from the checkpoint, through transient faults of every kind.
    influx.fail_next(
        Fault("status", 503, retry_after="1"),
        Fault("status", 429, retry_after="0"),
        Fault("drop_after_store"),
        Fault("status", 503),
        Fault("drop"),
    )
    patient = parse_consumer_args(
        [*consumer_argv(influx, tmp_path, input_path), "--influx-max-attempts", "8"]
    )
    requests = influx.requests
    metrics = run(spark, patient, ConsumerMetrics())
    assert_matches(influxdb, readings, windows)
    assert not influx.rejected
    assert len(dead_letters(tmp_path)) == quarantined == 2
    sample = metrics.registry.get_sample_value
    assert sample("hydro_consumer_records_total", {"status": "valid"}) == 1200
    assert sample("hydro_consumer_records_total", {"status": "quarantined"}) == 2
    reasons = Counter(reason for reason, _ in map(oracle.check, messages) if reason is not None)
    assert sum(reasons.values()) == 2
    for reason, count in reasons.items():
        assert sample("hydro_consumer_quarantined_total", {"reason": reason}) == count
    assert sample("hydro_consumer_points_written_total", {"measurement": "sensor_readings"}) == 1200
    assert sample("hydro_consumer_points_written_total", {"measurement": "sensor_window_stats"}) == len(
        windows
    )
    assert sample("hydro_consumer_sink_errors_total") >= 5
    # Every request the proxy received was one write attempt the consumer counted.
    assert sample("hydro_consumer_sink_write_attempts_total") == influx.requests - requests

    # A restart from the checkpoint writes nothing again.
    writes = influx.accepted_writes
    run(spark, args, ConsumerMetrics())
    assert influx.accepted_writes == writes
    assert_matches(influxdb, readings, windows)


@pytest.mark.slow
def test_each_message_is_read_parsed_and_checked_once_per_batch(spark, tmp_path, capsys):
    input_path, _messages = write_input(tmp_path, 20)
    apply_query_conf(spark)  # the plan the consumer runs
    messages = (
        spark.readStream.format("text").load(input_path).select(F.col("value").cast("binary").alias("value"))
    )
    query = (
        consumer_output(messages, "5 minutes", "1 minute", "10 minutes")
        .writeStream.outputMode("update")
        .format("noop")
        .trigger(once=True)  # one batch, so explain() shows the batch that read the file
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .start()
    )
    query.awaitTermination()
    query.explain()
    plan = capsys.readouterr().out
    # The window branch reads the message branch's exchange instead of scanning and parsing again.
    assert plan.count("ReusedExchange") == 1
    assert plan.count("FileScan text") == 1
