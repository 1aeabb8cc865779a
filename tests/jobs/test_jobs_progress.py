"""The consumer's batch log: one line per micro-batch from foreachBatch's counts and Spark's progress."""

from __future__ import annotations

import logging
import re

from hydrostream_jobs.metrics import ConsumerMetrics, ConsumerProgressListener
from hydrostream_jobs.progress import BatchCounts, BatchLog

from tests.jobs.test_jobs_metrics import progress_event

FIELD = re.compile(r"(\w+)=(\S+)")


def fields(line: str) -> dict[str, str]:
    return dict(FIELD.findall(line))


def test_a_batch_line_joins_the_batchs_counts_with_its_progress(caplog):
    batch_log = BatchLog()
    listener = ConsumerProgressListener(ConsumerMetrics(), batch_log)
    batch_log.counted(7, BatchCounts(valid=4990, quarantined=10, points_written=5050))
    with caplog.at_level(logging.INFO, logger="hydrostream_jobs"):
        listener.onQueryProgress(progress_event())
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("batch ")]
    assert line.startswith("batch 7: ")
    # progress_event: 5000 rows in 2500 ms, 4 dropped by the watermark, Kafka 5125 - 5100 behind.
    assert fields(line) == {
        "input_rows": "5000", "valid": "4990", "quarantined": "10", "late_dropped": "4",
        "points_written": "5050", "duration_s": "2.50", "offsets_behind": "25",
    }


def test_the_summary_adds_up_every_batch_and_says_na_without_kafka(caplog):
    batch_log = BatchLog()
    listener = ConsumerProgressListener(ConsumerMetrics(), batch_log)
    file_source = [{"description": "FileStreamSource[file:/in]", "startOffset": None,
                    "endOffset": {"logOffset": 0}, "latestOffset": None, "numInputRows": 300,
                    "inputRowsPerSecond": 0.0, "processedRowsPerSecond": 10.0}]
    batch_log.counted(0, BatchCounts(valid=290, quarantined=10, points_written=300))
    batch_log.counted(1, BatchCounts(valid=200, quarantined=0, points_written=215))
    with caplog.at_level(logging.INFO, logger="hydrostream_jobs"):
        listener.onQueryProgress(progress_event(batchId=0, numInputRows=300, batchDuration=1500,
                                                sources=file_source))
        listener.onQueryProgress(progress_event(batchId=1, numInputRows=200, batchDuration=250,
                                                sources=file_source, stateOperators=[]))
        batch_log.log_summary(12.5, "finished")
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in lines] == ["batch 0", "batch 1", "summary (finished)"]
    assert fields(lines[1])["offsets_behind"] == "n/a" and fields(lines[1])["late_dropped"] == "0"
    assert fields(lines[2]) == {
        "batches": "2", "input_rows": "500", "valid": "490", "quarantined": "10", "late_dropped": "4",
        "points_written": "515", "batch_s": "1.75", "wall_s": "12.50", "offsets_behind": "n/a",
    }


def test_a_batch_without_counts_says_so_instead_of_inventing_zeros(caplog):
    listener = ConsumerProgressListener(ConsumerMetrics(), BatchLog())
    with caplog.at_level(logging.INFO, logger="hydrostream_jobs"):
        listener.onQueryProgress(progress_event())
    line = caplog.records[-1].getMessage()
    assert (fields(line)["valid"], fields(line)["points_written"]) == ("n/a", "n/a")
