"""Shuffle partitions of a consumer started as a user starts it: derived from cores, overridable, and
a warning when an existing checkpoint keeps another count; the query's own settings yield to the
Spark conf."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from hydrostream_jobs import session
from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.consumer_job import QUERY_CONF, apply_query_conf
from hydrostream_jobs.session import shuffle_partitions_in_offsets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# As a user's shell has it: no PYSPARK_SUBMIT_ARGS, no spark-defaults, no --master.
USER_ENV = {key: value for key, value in os.environ.items() if key != "PYSPARK_SUBMIT_ARGS"}
CHOICE = re.compile(r"INFO hydrostream_jobs\.session: spark\.sql\.shuffle\.partitions=(\d+) \((.*)\)")


def _reading(device: int, second: int) -> str:
    return json.dumps({
        "farm_id": "farm-01", "zone": "bay-1", "device_id": f"hp-{device:04d}",
        "ts": f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z", "ph": 5.9, "ec_ms_cm": 1.6,
        "water_temp_c": 19.5, "air_temp_c": 22.0, "humidity_pct": 68.0, "light_ppfd": 400.0,
        "dissolved_oxygen_mg_l": 8.6,
    })


def _write_input(folder, name: str, first_second: int) -> None:
    folder.mkdir(exist_ok=True)
    lines = [_reading(device, first_second + device) for device in range(5)]
    (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _consumer(tmp_path, checkpoint: str, *extra: str, env: dict[str, str] | None = None):
    command = [
        sys.executable, os.path.join(ROOT, "jobs", "consumer.py"), "--source", "files",
        "--input-path", str(tmp_path / "input"), "--sink", "noop", "--metrics-port", "0",
        "--dead-letter-path", str(tmp_path / "dead"), "--checkpoint-location", str(tmp_path / checkpoint),
        *extra,
    ]
    done = subprocess.run(command, env=env or USER_ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stderr


def _recorded_in_checkpoint(tmp_path, checkpoint: str) -> int:
    """The newest offsets file's count, read with plain Python (not the job's reader)."""
    offsets = tmp_path / checkpoint / "consumer" / "offsets"
    newest = max((p for p in offsets.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    metadata = json.loads(newest.read_text(encoding="utf-8").splitlines()[1])
    return int(metadata["conf"]["spark.sql.shuffle.partitions"])


def _batches(tmp_path, checkpoint: str) -> int:
    offsets = tmp_path / checkpoint / "consumer" / "offsets"
    return sum(1 for p in offsets.iterdir() if p.name.isdigit())


def test_shuffle_partitions_from_cores_the_flag_and_a_checkpoint_that_wins(tmp_path):
    cores = len(os.sched_getaffinity(0))
    _write_input(tmp_path / "input", "part-0.json", 0)

    # No cluster conf: two partitions per core Spark has (local[*] = this machine's cores).
    log = _consumer(tmp_path, "derived")
    assert CHOICE.findall(log) == [(str(2 * cores), f"not set by the Spark conf: 2 x {cores} cores")]
    assert _recorded_in_checkpoint(tmp_path, "derived") == 2 * cores
    assert "WARNING" not in log

    # The flag wins over the derived count and reaches a new checkpoint.
    log = _consumer(tmp_path, "flag", "--shuffle-partitions", "3", "--master", "local[1]")
    assert CHOICE.findall(log) == [("3", "--shuffle-partitions")]
    assert _recorded_in_checkpoint(tmp_path, "flag") == 3

    # A cluster conf with another count, over the first checkpoint: Spark keeps the checkpoint's.
    _write_input(tmp_path / "input", "part-1.json", 600)
    batches_before = _batches(tmp_path, "derived")
    conf_env = {**USER_ENV, "PYSPARK_SUBMIT_ARGS": "--conf spark.sql.shuffle.partitions=5 pyspark-shell"}
    log = _consumer(tmp_path, "derived", env=conf_env)
    assert CHOICE.findall(log) == [("5", "set by the Spark conf")]
    warnings = [line for line in log.splitlines() if "WARNING hydrostream_jobs" in line]
    assert len(warnings) == 1, log[-3000:]
    assert f"started with spark.sql.shuffle.partitions={2 * cores}" in warnings[0]
    assert "configured with 5" in warnings[0] and "the checkpoint wins" in warnings[0]
    assert _batches(tmp_path, "derived") > batches_before  # the second file made new batches ...
    assert _recorded_in_checkpoint(tmp_path, "derived") == 2 * cores  # ... with the checkpoint's count


def test_offsets_metadata_is_read_and_a_foreign_file_is_named():
    text = 'v1\n{"batchWatermarkMs":0,"conf":{"spark.sql.shuffle.partitions":"7"}}\n{"logOffset":0}\n'
    assert shuffle_partitions_in_offsets(text) == 7
    assert shuffle_partitions_in_offsets('v1\n{"batchWatermarkMs":0}\n') is None
    with pytest.raises(ValueError, match="not a Spark offsets-log file"):
        shuffle_partitions_in_offsets("hello\n")


def test_the_shuffle_partitions_flag_takes_a_positive_count(capsys):
    argv = ["--source", "files", "--input-path", "/in", "--sink", "noop", "--dead-letter-path", "/d",
            "--checkpoint-location", "/c"]
    assert parse_consumer_args(argv).shuffle_partitions is None
    assert parse_consumer_args([*argv, "--shuffle-partitions", "12"]).shuffle_partitions == 12
    with pytest.raises(SystemExit):
        parse_consumer_args([*argv, "--shuffle-partitions", "0"])
    assert "--shuffle-partitions" in capsys.readouterr().err


class _Session:
    """What apply_query_conf reads and writes: the Spark conf it was started with, the SQL conf."""

    def __init__(self, spark_conf: dict[str, str]):
        self.spark_conf = spark_conf
        self.sql_conf: dict[str, str] = {}
        self.sparkContext = self
        self.conf = self

    def getConf(self):
        return self.spark_conf

    def set(self, key: str, value: str) -> None:
        self.sql_conf[key] = value


def test_the_query_settings_yield_to_the_spark_conf():
    chosen = "spark.sql.streaming.noDataMicroBatches.enabled"
    session = _Session({chosen: "true"})
    apply_query_conf(session)
    assert chosen not in session.sql_conf  # the cluster's (or spark-submit's) value stands
    others = set(QUERY_CONF) - {chosen}
    assert others and set(session.sql_conf) == others
    assert session.sql_conf["spark.sql.constraintPropagation.enabled"] == "false"


def test_an_entry_points_session_is_stopped_when_the_job_ends_or_fails(monkeypatch):
    started: list[tuple] = []
    stopped: list[str] = []

    class _Stoppable:
        def __init__(self, name: str) -> None:
            self.name = name

        def stop(self) -> None:
            stopped.append(self.name)

    def fake_session(app_name, master, shuffle_partitions=None):
        started.append((app_name, master, shuffle_partitions))
        return _Stoppable(app_name)

    monkeypatch.setattr(session, "spark_session", fake_session)
    with session.job_session("ended", "local[1]", 3) as spark:
        assert spark.name == "ended" and stopped == []
    with pytest.raises(RuntimeError, match="query failed"), session.job_session("failed", None):
        raise RuntimeError("query failed")
    assert started == [("ended", "local[1]", 3), ("failed", None, None)]
    assert stopped == ["ended", "failed"]
