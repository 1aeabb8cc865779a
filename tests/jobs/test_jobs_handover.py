"""Release handover: the start a new release's consumer takes from the previous release's checkpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hydrostream_jobs import handover
from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.handover import CommittedBatch, HandoverError, StartPosition
from hydrostream_jobs.kafka import kafka_reader_options

MINUTE_MS = 60_000
# 2026-01-01T00:20:00Z, written out rather than computed by the code under test.
T_0020 = 1_767_226_800_000


class PathFiles:
    """handover.CheckpointFiles over the local file system, for tests without Spark."""

    def exists(self, path: str) -> bool:
        return Path(path).exists()

    def list_dirs(self, path: str) -> list[str]:
        return [child.name for child in Path(path).iterdir() if child.is_dir()]

    def list_names(self, path: str) -> list[str]:
        return [child.name for child in Path(path).iterdir() if child.is_file()]

    def read_text(self, path: str) -> str:
        return Path(path).read_text(encoding="utf-8")

    def write_text(self, path: str, text: str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")


def offsets_entry(batch_timestamp_ms: int, batch_watermark_ms: int = 0) -> str:
    """An offsets/<n> file as Spark 3.5 writes it (version, batch metadata, one offset per source)."""
    metadata = {"batchWatermarkMs": batch_watermark_ms, "batchTimestampMs": batch_timestamp_ms,
                "conf": {"spark.sql.shuffle.partitions": "2"}}
    return f"v1\n{json.dumps(metadata)}\n{{\"hydro.readings\":{{\"0\":1200,\"1\":1180}}}}"


def write_checkpoint(query: Path, batches: dict[int, tuple[int, int]], uncommitted: tuple[int, ...] = ()):
    """A query checkpoint with committed batches {id: (batch timestamp, next watermark)}."""
    (query / "offsets").mkdir(parents=True)
    (query / "commits").mkdir()
    for batch, (timestamp, watermark) in batches.items():
        (query / "offsets" / str(batch)).write_text(offsets_entry(timestamp))
        (query / "commits" / str(batch)).write_text(f"v1\n{{\"nextBatchWatermarkMs\":{watermark}}}")
        (query / "commits" / f".{batch}.crc").write_text("crc")
    for batch in uncommitted:
        (query / "offsets" / str(batch)).write_text(offsets_entry(10**13))


def test_entries_are_parsed_and_a_malformed_one_is_named():
    assert handover.parse_offsets_entry(offsets_entry(1_700_000_000_123, 5)) == 1_700_000_000_123
    assert handover.parse_commit_entry('v1\n{"nextBatchWatermarkMs":42}') == 42
    assert handover.parse_commit_entry("v1\n{}") == 0  # a commit of a query without watermark
    with pytest.raises(HandoverError, match="ckpt/offsets/3 is not a Spark v1"):
        handover.parse_offsets_entry('v2\n{"batchTimestampMs":1}', "ckpt/offsets/3")
    with pytest.raises(HandoverError, match="batchTimestampMs is None"):
        handover.parse_offsets_entry('v1\n{"batchWatermarkMs":0}')
    with pytest.raises(HandoverError, match="second line is not JSON"):
        handover.parse_commit_entry("v1\nnot json")
    assert handover.batch_ids(["10", ".10.crc", "9", "2.tmp", "_spark_metadata"]) == [9, 10]
    assert handover.interval_ms("5 minutes") == 5 * MINUTE_MS
    assert handover.interval_ms("30 seconds") == 30_000
    with pytest.raises(HandoverError, match="'5m' is not an interval"):
        handover.interval_ms("5m")


def test_start_is_the_event_time_position_less_one_window_and_the_watermark():
    # Watermark 00:20 after the batch with a 10 min delay: the largest event time seen was 00:30.
    batch = CommittedBatch("root/a/consumer/consumer", 7, batch_timestamp_ms=T_0020 + 60 * MINUTE_MS,
                           next_watermark_ms=T_0020)
    position = handover.start_position(batch, window_ms=5 * MINUTE_MS, watermark_ms=10 * MINUTE_MS)
    assert position.starting_timestamp_ms == T_0020 - 5 * MINUTE_MS  # 00:30 - 5 min - 10 min = 00:15
    assert position.complete_from_ms == T_0020 - 5 * MINUTE_MS
    assert position.previous == "root/a/consumer/consumer"
    assert "2026-01-01T00:15:00+00:00" in position.describe()

    # A reading from the future moved the watermark past the batch's wall clock (00:25): the clock wins.
    ahead = CommittedBatch("c", 3, batch_timestamp_ms=T_0020 + 5 * MINUTE_MS,
                           next_watermark_ms=T_0020 + 10**9)
    capped = handover.start_position(ahead, window_ms=5 * MINUTE_MS, watermark_ms=10 * MINUTE_MS)
    assert capped.starting_timestamp_ms == T_0020 - 10 * MINUTE_MS
    assert "capped" in capped.reason

    assert handover.start_position(None, 1, 1).starting_timestamp_ms is None
    no_watermark = CommittedBatch("c", 0, batch_timestamp_ms=T_0020, next_watermark_ms=0)
    assert handover.start_position(no_watermark, 5 * MINUTE_MS, 10 * MINUTE_MS).starting_timestamp_ms is None


def test_the_release_that_ran_last_is_the_last_planned_in_wall_clock_time_not_the_highest_batch_number():
    old = CommittedBatch("a", 900, batch_timestamp_ms=T_0020 + 10 * MINUTE_MS,
                         next_watermark_ms=T_0020 - 20 * MINUTE_MS)
    new = CommittedBatch("b", 2, batch_timestamp_ms=T_0020 + 60 * MINUTE_MS, next_watermark_ms=T_0020)
    releases = [handover.ReleaseCheckpoint("a", T_0020 + 10 * MINUTE_MS, old, None),
                handover.ReleaseCheckpoint("b", T_0020 + 60 * MINUTE_MS, new, None)]
    for order in (releases, releases[::-1]):
        position = handover.hand_over(order, 5 * MINUTE_MS, 10 * MINUTE_MS)
        # b: watermark 00:20 + 10 min = 00:30, less 15 min (a's would be 23:55).
        assert (position.previous, position.starting_timestamp_ms) == ("b", T_0020 - 5 * MINUTE_MS)
    assert handover.hand_over([], 1, 1) == StartPosition(None, "no earlier release has planned a batch")


def record(start_ms: int | None, previous: str = "root/a/consumer/consumer") -> str:
    return StartPosition(start_ms, "handed over", previous).to_json()


def test_a_release_stopped_before_its_first_commit_hands_over_its_own_start(tmp_path):
    root, files = tmp_path / "checkpoints", PathFiles()
    decide = lambda release: handover.decide(  # noqa: E731
        files, str(root), str(root / release / "consumer"), "consumer", "5 minutes", "10 minutes")
    # a committed a position long ago (00:20 - 60 min watermark); b was handed over a start of 00:13
    # (from a state of a since cleaned up), planned a batch at 00:50 and was stopped before committing it.
    write_checkpoint(root / "a" / "consumer" / "consumer",
                     {40: (T_0020 - 50 * MINUTE_MS, T_0020 - 60 * MINUTE_MS)})
    b = root / "b" / "consumer"
    write_checkpoint(b / "consumer", {}, uncommitted=(0,))
    (b / handover.RECORD_NAME).write_text(record(T_0020 - 7 * MINUTE_MS))
    position = decide("c")
    # Not a's position (00:20 - 60 + 10 - 15 min): b re-reads from 00:13, so must c.
    assert position.starting_timestamp_ms == T_0020 - 7 * MINUTE_MS
    assert position.previous == f"{b}/consumer"
    assert "committed no batch since it was handed over" in position.reason

    # b committed its batch but read only malformed messages (no watermark): still its own start.
    (b / "consumer" / "commits" / "0").write_text("v1\n{}")
    assert decide("d").starting_timestamp_ms == T_0020 - 7 * MINUTE_MS
    assert "has no watermark at batch 0" in decide("d").reason

    # Without a's checkpoint (cleaned up) b alone still knows the start: no replay from the topic's start.
    for path in sorted((root / "a").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    assert decide("e").starting_timestamp_ms == T_0020 - 7 * MINUTE_MS


def test_a_release_that_knows_no_position_leaves_the_choice_to_the_one_before(tmp_path):
    root, files = tmp_path / "checkpoints", PathFiles()
    write_checkpoint(root / "a" / "consumer" / "consumer",
                     {40: (T_0020 - 50 * MINUTE_MS, T_0020 - 60 * MINUTE_MS)})
    # b ran last, without a handover (no record) and stopped before its first commit.
    write_checkpoint(root / "b" / "consumer" / "consumer", {}, uncommitted=(0,))
    position = handover.decide(files, str(root), str(root / "c" / "consumer"), "consumer", "5 minutes",
                               "10 minutes")
    # a: watermark 23:20 + 10 min = 23:30, less 15 min = 23:15 (00:20 - 65 min).
    assert position.starting_timestamp_ms == T_0020 - 65 * MINUTE_MS
    assert position.previous == f"{root}/a/consumer/consumer"


def test_only_releases_without_a_position_start_at_the_starting_offsets_and_say_so(tmp_path):
    # The first release started at --starting-offsets and was stopped after its sink wrote its first
    # batch but before Spark committed it: the next one must read that batch again, and name why.
    root = tmp_path / "checkpoints"
    old = root / "old" / "consumer"
    write_checkpoint(old / "consumer", {}, uncommitted=(0,))
    (old / handover.RECORD_NAME).write_text(record(None, None))
    position = handover.decide(PathFiles(), str(root), str(root / "new" / "consumer"), "consumer",
                               "5 minutes", "10 minutes")
    assert position.starting_timestamp_ms is None
    assert f"({old}/consumer): starting at --starting-offsets" in position.reason


def test_a_fresh_release_hands_over_from_the_release_that_ran_last_and_keeps_its_decision(tmp_path):
    root = tmp_path / "checkpoints"
    files = PathFiles()
    # Release a ran long ago; release b ran last (higher wall clock, lower batch number).
    write_checkpoint(root / "a" / "consumer" / "consumer",
                     {40: (T_0020 - 50 * MINUTE_MS, T_0020 - 60 * MINUTE_MS)})
    write_checkpoint(root / "b" / "consumer" / "consumer",
                     {2: (T_0020 + 30 * MINUTE_MS, T_0020 + 5 * MINUTE_MS)}, uncommitted=(3,))
    (root / "d").mkdir()  # a release folder without a consumer checkpoint

    position = handover.decide(files, str(root), str(root / "c" / "consumer"), "consumer", "5 minutes",
                               "10 minutes")
    # b's batch 2 (batch 3 never committed): 00:25 watermark + 10 min = 00:35, less 15 min.
    assert position.starting_timestamp_ms == T_0020
    assert position.previous == f"{root}/b/consumer/consumer"

    # Recorded: a restart (even after b's folder changed) takes the same start and filter.
    write_checkpoint(root / "e" / "consumer" / "consumer",
                     {0: (T_0020 + 90 * MINUTE_MS, T_0020 + 80 * MINUTE_MS)})
    again = handover.decide(files, str(root), str(root / "c" / "consumer"), "consumer", "5 minutes",
                            "10 minutes")
    assert again == position

    # A release that already committed without a record resumes from its own checkpoint.
    resumed = handover.decide(files, str(root), str(root / "b" / "consumer"), "consumer", "5 minutes",
                              "10 minutes")
    assert resumed.starting_timestamp_ms is None
    assert "resumes from its own checkpoint" in resumed.reason


def test_no_earlier_release_starts_at_the_starting_offsets(tmp_path):
    root = tmp_path / "checkpoints"
    position = handover.decide(PathFiles(), str(root), str(root / "r1" / "consumer"), "consumer", "5 minutes",
                               "10 minutes")
    assert position == StartPosition(None, "no earlier release has planned a batch")
    recorded = StartPosition.from_json((root / "r1" / "consumer" / handover.RECORD_NAME).read_text(), "r")
    assert recorded == position


def test_paths_that_cannot_be_handed_over_are_refused_by_name(tmp_path):
    with pytest.raises(HandoverError, match="/elsewhere/x/consumer is not below the handover root /ckpt"):
        handover.CheckpointLayout.of("/ckpt", "/elsewhere/x/consumer")
    with pytest.raises(HandoverError, match="needs a release folder"):
        handover.CheckpointLayout.of("gs://bucket/", "gs://bucket/")
    layout = handover.CheckpointLayout.of("gs://bucket/", "gs://bucket/r9/consumer")
    assert (layout.root, layout.release, layout.rest) == ("gs://bucket", "r9", "consumer")
    assert layout.query_checkpoint("r1", "consumer") == "gs://bucket/r1/consumer/consumer"
    with pytest.raises(HandoverError, match="is not a handover record"):
        StartPosition.from_json('{"starting_timestamp_ms": "soon", "reason": "x"}', "rec")


def test_the_reader_starts_at_the_timestamp_with_latest_for_an_idle_partition():
    handed = kafka_reader_options("k:9092", "t", "earliest", 100, True, starting_timestamp_ms=T_0020)
    assert handed["startingTimestamp"] == str(T_0020)
    assert handed["startingOffsetsByTimestampStrategy"] == "latest"
    assert "startingOffsets" not in handed  # precedence must not be left to Spark's rules
    assert handed["failOnDataLoss"] == "true"
    first = kafka_reader_options("k:9092", "t", "earliest", 100, True)
    assert first["startingOffsets"] == "earliest"
    assert "startingTimestamp" not in first
    with pytest.raises(ValueError, match="milliseconds since the epoch"):
        kafka_reader_options("k:9092", "t", "earliest", 100, True, starting_timestamp_ms=-1)


def consumer_cli(checkpoint: str, *extra: str) -> list[str]:
    return ["--source", "kafka", "--bootstrap-servers", "k:9092", "--sink", "noop",
            "--dead-letter-path", "/tmp/dlq", "--checkpoint-location", checkpoint, *extra]


def test_the_command_line_takes_a_handover_root_above_the_checkpoint(capsys):
    args = parse_consumer_args(consumer_cli("gs://b/r2/consumer", "--handover-from", "gs://b/"))
    assert args.handover_from == "gs://b/"
    assert parse_consumer_args(consumer_cli("/c/consumer")).handover_from is None
    with pytest.raises(SystemExit):
        parse_consumer_args(consumer_cli("/c/", "--handover-from", "/c"))
    assert "needs a release folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_consumer_args(consumer_cli("/other/r2/consumer", "--handover-from", "/c"))
    assert "--checkpoint-location, --handover-from" in capsys.readouterr().err


def test_no_handover_flag_or_a_file_source_starts_without_a_timestamp(spark):
    from hydrostream_jobs.consumer_job import start_position

    plain = parse_consumer_args(consumer_cli("/c/r/consumer"))
    assert start_position(spark, plain).starting_timestamp_ms is None
    files = parse_consumer_args(["--source", "files", "--input-path", "/in", "--sink", "noop",
                                 "--dead-letter-path", "/d", "--checkpoint-location", "/c/r/consumer",
                                 "--handover-from", "/c"])
    assert "file source" in start_position(spark, files).reason


def reading(ts: datetime, value: float) -> bytes:
    fields = {"farm_id": "farm-01", "zone": "bay-1", "device_id": "hp-1",
              "ts": ts.isoformat().replace("+00:00", "Z"), "ph": 6.0, "ec_ms_cm": 1.5, "water_temp_c": 20.0,
              "air_temp_c": 22.0, "humidity_pct": 60.0, "light_ppfd": value, "dissolved_oxygen_mg_l": 7.0}
    return json.dumps(fields).encode()


START = datetime(2026, 1, 1, tzinfo=UTC)
# One reading every 30 s from 00:00 to 00:19:30.
READINGS = [reading(START + timedelta(seconds=30 * i), float(i)) for i in range(40)]


def window_ends_written(rows) -> set[int]:
    """The point times (window ends, ns) of the sensor_window_stats lines."""
    return {int(row["line"].rsplit(" ", 1)[1]) for row in rows if row["kind"] == "window"}


@pytest.mark.spark
def test_windows_that_begin_before_the_handover_start_are_not_written(spark):
    from hydrostream_jobs.consumer_job import consumer_output

    messages = spark.createDataFrame([(m,) for m in READINGS], "value binary")
    complete_from = START + timedelta(minutes=7, seconds=30)
    rows = consumer_output(messages, "5 minutes", "1 minute", "10 minutes",
                           int(complete_from.timestamp() * 1000)).collect()
    # Every 1-minute-aligned 5-minute window [s, s+5m) that holds a reading (00:00..00:19:30) and
    # starts at or after 00:07:30: s = 00:08 .. 00:19.
    expected = {int((START + timedelta(minutes=s + 5)).timestamp()) * 10**9 for s in range(8, 20)}
    assert window_ends_written(rows) == expected
    assert sum(row["kind"] == "reading" for row in rows) == len(READINGS)  # every reading is rewritten

    unfiltered = consumer_output(messages, "5 minutes", "1 minute", "10 minutes").collect()
    assert min(window_ends_written(unfiltered)) == int((START + timedelta(minutes=1)).timestamp()) * 10**9


@pytest.mark.spark
@pytest.mark.slow
def test_a_new_release_starts_from_the_checkpoint_a_real_consumer_run_left(spark, tmp_path):
    from hydrostream_jobs.consumer_job import kafka_source_options, run, start_position

    input_path = tmp_path / "input"
    input_path.mkdir()
    (input_path / "part-0.txt").write_bytes(b"\n".join(READINGS) + b"\n")
    root = tmp_path / "checkpoints"
    release_a = parse_consumer_args([
        "--source", "files", "--input-path", str(input_path), "--sink", "noop",
        "--dead-letter-path", str(root / "a" / "dead-letter"),
        "--checkpoint-location", str(root / "a" / "consumer"),
        "--trigger", "available-now", "--window", "5m", "--slide", "1m", "--watermark", "10m",
        "--metrics-port", "0",
    ])
    run(spark, release_a)

    release_b = parse_consumer_args([
        *consumer_cli(str(root / "b" / "consumer"), "--handover-from", str(root)),
        "--window", "5m", "--watermark", "10m",
    ])
    position = start_position(spark, release_b)
    # Release a saw event times up to 00:19:30: its watermark is 00:09:30, its position 00:19:30,
    # so release b starts 15 minutes earlier, at 00:04:30.
    expected = int((START + timedelta(minutes=4, seconds=30)).timestamp() * 1000)
    assert position.starting_timestamp_ms == expected, position.reason
    assert position.previous.endswith("/a/consumer/consumer")
    options = kafka_source_options(release_b, position)
    assert options["startingTimestamp"] == str(expected)
    assert options["startingOffsetsByTimestampStrategy"] == "latest"
    assert "startingOffsets" not in options
    # The decision is kept for b's restarts; a itself resumes from its own checkpoint.
    assert (root / "b" / "consumer" / handover.RECORD_NAME).exists()
    assert start_position(spark, release_b) == position
    release_a_on_kafka = parse_consumer_args(
        consumer_cli(str(root / "a" / "consumer"), "--handover-from", str(root)))
    assert start_position(spark, release_a_on_kafka).starting_timestamp_ms is None
