"""What the jobs log, through their real command lines: time and level on every line, a line per batch."""

from __future__ import annotations

import glob
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.jobs import oracle
from tests.jobs.test_jobs_end_to_end import ENV, committed_batches, job, produce_files, produced_messages

# Far from UTC, so a timestamp taken in local time would be hours off.
FAR_FROM_UTC = {**ENV, "TZ": "Pacific/Kiritimati"}
# Spark's own output, not the jobs' to format: log4j's default pattern and its two start-up notices.
SPARK_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
SPARK_NOTICES = {
    'Setting default log level to "WARN".',
    "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).",
}
JOB_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"([\w.]+): (.*)$"
)
FIELD = re.compile(r"(\w+)=(\S+)")


def job_messages(output: str, started: datetime) -> list[str]:
    """The jobs' messages in a run's output; fails on a line not log4j's that lacks time or level."""
    messages = []
    for line in output.splitlines():
        if not line.strip() or SPARK_LINE.match(line) or line in SPARK_NOTICES:
            continue
        match = JOB_LINE.match(line)
        assert match, f"a line without UTC time and level: {line!r}"
        stamp = datetime.fromisoformat(match[1]).replace(tzinfo=UTC)
        assert started - timedelta(seconds=1) <= stamp <= datetime.now(UTC), line
        if match[3].startswith("hydrostream_jobs"):
            messages.append(match[4])
    return messages


def fields(message: str) -> dict[str, str]:
    return dict(FIELD.findall(message))


@pytest.mark.slow
def test_the_jobs_log_each_batch_and_a_summary_that_add_up_with_time_and_level_on_every_line(tmp_path):
    started = datetime.now(UTC)
    input_path = str(tmp_path / "input")
    produced = produce_files(input_path, 3000, env=FAR_FROM_UTC)
    [done] = [m for m in job_messages(produced.stderr + produced.stdout, started) if m.startswith("done: ")]
    assert done.startswith(f"done: wrote 3000 readings to files under {input_path} in ")
    reasons = [oracle.check(message)[0] for message in produced_messages(input_path)]
    valid = reasons.count(None)
    assert len(reasons) == 3000 and 0 < valid < 3000

    consumed = job(
        "consumer.py", "--source", "files", "--input-path", input_path, "--max-files-per-trigger", "1",
        "--sink", "noop", "--dead-letter-path", str(tmp_path / "dlq"),
        "--checkpoint-location", str(tmp_path / "checkpoints"), "--trigger", "available-now",
        "--metrics-port", "0", env=FAR_FROM_UTC,
    )
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    messages = job_messages(consumed.stderr + consumed.stdout, started)
    batch_lines = [m for m in messages if m.startswith("batch ")]
    batch_ids = [int(re.match(r"batch (\d+): ", line)[1]) for line in batch_lines]
    # One file per micro-batch: a batch line for each file, each committed batch.
    assert batch_ids == committed_batches(tmp_path / "checkpoints" / "consumer")
    assert len(batch_ids) == len(glob.glob(f"{input_path}/part-*")) >= 2
    batches = [fields(line) for line in batch_lines]
    for batch in batches:
        assert int(batch["valid"]) + int(batch["quarantined"]) == int(batch["input_rows"]) > 0
        # Readings' points and at least one window's point; the event times span 300 s, under the
        # 10 min watermark, so nothing is late; a file source has no offsets.
        assert int(batch["points_written"]) > int(batch["valid"])
        assert (batch["late_dropped"], batch["offsets_behind"]) == ("0", "n/a")
        assert float(batch["duration_s"]) > 0
    assert sum(int(b["input_rows"]) for b in batches) == 3000
    assert sum(int(b["valid"]) for b in batches) == valid
    assert sum(int(b["quarantined"]) for b in batches) == 3000 - valid

    [summary] = [m for m in messages if m.startswith("summary ")]
    assert summary.startswith("summary (finished): ")
    totals = fields(summary)
    assert {k: totals[k] for k in ("batches", "input_rows", "valid", "quarantined", "late_dropped")} == {
        "batches": str(len(batches)), "input_rows": "3000", "valid": str(valid),
        "quarantined": str(3000 - valid), "late_dropped": "0",
    }
    assert int(totals["points_written"]) == sum(int(b["points_written"]) for b in batches)
    assert float(totals["wall_s"]) >= float(totals["batch_s"]) > 0
