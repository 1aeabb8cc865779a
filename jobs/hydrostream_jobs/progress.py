"""The consumer's log line per micro-batch and its run summary, from counts and progress Spark already has.

foreachBatch counts each batch by kind (it needs the counts for the metrics anyway) and the query's
StreamingQueryListener receives the batch's progress after the batch committed; this module joins the
two on the batch id. It runs no Spark action and keeps no reference to a DataFrame: driver side only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class BatchCounts:
    """What foreachBatch counted in one micro-batch."""

    valid: int
    quarantined: int
    points_written: int  # readings' and windows' points the sink took (noop: discarded, console: shown)


@dataclass(frozen=True)
class BatchProgress:
    """The parts of Spark's StreamingQueryProgress that the metrics and the log use."""

    query: str
    batch_id: int
    input_rows: int
    duration_s: float
    input_rows_per_second: float | None  # None: no earlier batch to measure against (Spark's NaN)
    late_rows_dropped: int
    watermark: str | None  # None: the query has no stateful operator
    offsets_behind: int | None  # None: no Kafka source


def batch_progress(progress) -> BatchProgress:
    """Read a pyspark StreamingQueryProgress."""
    rate = progress.inputRowsPerSecond
    behind = [
        int(float(value))
        for source in progress.sources
        if (value := (source.metrics or {}).get("maxOffsetsBehindLatest")) is not None
    ]
    return BatchProgress(
        query=progress.name or "unnamed",
        batch_id=progress.batchId,
        input_rows=progress.numInputRows,
        duration_s=progress.batchDuration / 1000.0,
        input_rows_per_second=rate if rate == rate else None,
        late_rows_dropped=sum(op.numRowsDroppedByWatermark for op in progress.stateOperators),
        watermark=progress.eventTime.get("watermark") if progress.stateOperators else None,
        offsets_behind=max(behind) if behind else None,
    )


@dataclass(frozen=True)
class RunTotals:
    """The counters of every batch logged so far."""

    batches: int = 0
    input_rows: int = 0
    valid: int = 0
    quarantined: int = 0
    late_rows_dropped: int = 0
    points_written: int = 0
    batch_seconds: float = 0.0
    offsets_behind: int | None = None  # after the last batch

    def add(self, progress: BatchProgress, counts: BatchCounts | None) -> RunTotals:
        """These totals with one more batch."""
        counted = counts or BatchCounts(0, 0, 0)
        return replace(
            self,
            batches=self.batches + 1,
            input_rows=self.input_rows + progress.input_rows,
            valid=self.valid + counted.valid,
            quarantined=self.quarantined + counted.quarantined,
            late_rows_dropped=self.late_rows_dropped + progress.late_rows_dropped,
            points_written=self.points_written + counted.points_written,
            batch_seconds=self.batch_seconds + progress.duration_s,
            offsets_behind=progress.offsets_behind,
        )


def _or_na(value: int | None) -> str:
    return NOT_APPLICABLE if value is None else str(value)


def batch_line(progress: BatchProgress, counts: BatchCounts | None) -> str:
    """One micro-batch: what it read, what became of it, how long it took, how far behind Kafka it is."""
    valid, quarantined, points = (
        (counts.valid, counts.quarantined, counts.points_written) if counts else (None, None, None)
    )
    return (
        f"batch {progress.batch_id}: input_rows={progress.input_rows} valid={_or_na(valid)} "
        f"quarantined={_or_na(quarantined)} late_dropped={progress.late_rows_dropped} "
        f"points_written={_or_na(points)} duration_s={progress.duration_s:.2f} "
        f"offsets_behind={_or_na(progress.offsets_behind)}"
    )


def summary_line(totals: RunTotals, wall_s: float, outcome: str) -> str:
    """The whole run: its batches, the same counters summed, and the time from start to end."""
    return (
        f"summary ({outcome}): batches={totals.batches} input_rows={totals.input_rows} valid={totals.valid} "
        f"quarantined={totals.quarantined} late_dropped={totals.late_rows_dropped} "
        f"points_written={totals.points_written} batch_s={totals.batch_seconds:.2f} wall_s={wall_s:.2f} "
        f"offsets_behind={_or_na(totals.offsets_behind)}"
    )


class BatchLog:
    """Joins a batch's counts (foreachBatch, on the query's thread) with its progress (the listener's)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[int, BatchCounts] = {}
        self._totals = RunTotals()

    def counted(self, batch_id: int, counts: BatchCounts) -> None:
        """Keep a batch's counts until its progress arrives (a replayed batch replaces them)."""
        with self._lock:
            self._counts[batch_id] = counts

    def progressed(self, progress: BatchProgress) -> None:
        """Log the batch's line and add it to the totals."""
        with self._lock:
            counts = self._counts.pop(progress.batch_id, None)
            self._totals = self._totals.add(progress, counts)
        log.info(batch_line(progress, counts))

    @property
    def totals(self) -> RunTotals:
        """The totals of every batch logged so far."""
        with self._lock:
            return self._totals

    def log_summary(self, wall_s: float, outcome: str) -> None:
        """Log the run's summary: after an available-now run, what its user has (metrics end with it)."""
        log.info(summary_line(self.totals, wall_s, outcome))
