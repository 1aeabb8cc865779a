"""Driver-side Prometheus metrics of the jobs, fed by StreamingQueryListeners and per-batch counts.

The consumer's listener also hands each batch's progress to its log (progress.BatchLog).

Nothing here is ever shipped to executors: executor-side counters would never reach this endpoint.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from pyspark.sql.streaming import StreamingQueryListener

from hydrostream_jobs.contract import (
    CONSUMER_BATCH_DURATION_SECONDS,
    CONSUMER_INPUT_ROWS_PER_SECOND,
    CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST,
    CONSUMER_LATE_ROWS_DROPPED_TOTAL,
    CONSUMER_POINTS_WRITTEN_TOTAL,
    CONSUMER_QUARANTINED_TOTAL,
    CONSUMER_READINGS_ON_TIME_TOTAL,
    CONSUMER_RECORDS_TOTAL,
    CONSUMER_SINK_ERRORS_TOTAL,
    CONSUMER_SINK_WRITE_ATTEMPTS_TOTAL,
    CONSUMER_WATERMARK_LAG_SECONDS,
    MEASUREMENTS,
    PRODUCER_MESSAGES_SENT_TOTAL,
    STATUS_QUARANTINED,
    STATUS_VALID,
)
from hydrostream_jobs.progress import BatchLog, batch_progress
from hydrostream_jobs.validate import REASONS

_BATCH_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


@dataclass
class ConsumerMetrics:
    """The consumer's metrics, registered in their own registry (one per run)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        r = self.registry
        self.records = Counter(
            CONSUMER_RECORDS_TOTAL, "Messages consumed, by validity", ["status"], registry=r
        )
        self.quarantined = Counter(
            CONSUMER_QUARANTINED_TOTAL, "Messages quarantined, by reason code", ["reason"], registry=r
        )
        self.points_written = Counter(
            CONSUMER_POINTS_WRITTEN_TOTAL, "Points accepted by InfluxDB", ["measurement"], registry=r
        )
        self.sink_errors = Counter(
            CONSUMER_SINK_ERRORS_TOTAL,
            "Failed InfluxDB write attempts (retried, or failing the batch)",
            registry=r,
        )
        self.sink_attempts = Counter(
            CONSUMER_SINK_WRITE_ATTEMPTS_TOTAL,
            "InfluxDB write attempts, failed or accepted (with sink errors: the error ratio)",
            registry=r,
        )
        self.readings_on_time = Counter(
            CONSUMER_READINGS_ON_TIME_TOTAL,
            "sensor_readings points InfluxDB accepted within the freshness objective of their event time",
            registry=r,
        )
        self.batch_duration = Histogram(
            CONSUMER_BATCH_DURATION_SECONDS,
            "Micro-batch duration",
            ["query"],
            buckets=_BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.input_rows_per_second = Gauge(
            CONSUMER_INPUT_ROWS_PER_SECOND, "Input rate of the last micro-batch", ["query"], registry=r
        )
        self.watermark_lag = Gauge(
            CONSUMER_WATERMARK_LAG_SECONDS, "Wall clock minus the window aggregation's watermark", registry=r
        )
        self.offsets_behind = Gauge(
            CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST,
            "Largest per-partition lag behind the latest Kafka offset",
            registry=r,
        )
        self.late_rows_dropped = Counter(
            CONSUMER_LATE_ROWS_DROPPED_TOTAL, "Rows dropped by the watermark (later than allowed)", registry=r
        )
        for status in (STATUS_VALID, STATUS_QUARANTINED):
            self.records.labels(status=status)
        for measurement in MEASUREMENTS:
            self.points_written.labels(measurement=measurement)
        for reason in REASONS:
            self.quarantined.labels(reason=reason)


@dataclass
class ProducerMetrics:
    """The producer's metrics, registered in their own registry (one per run)."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))

    def __post_init__(self) -> None:
        self.messages_sent = Counter(
            PRODUCER_MESSAGES_SENT_TOTAL, "Messages written to the sink", registry=self.registry
        )

    def sent(self) -> int:
        """Messages written so far."""
        return int(self.registry.get_sample_value(PRODUCER_MESSAGES_SENT_TOTAL) or 0)


def watermark_lag_seconds(watermark_iso: str | None, now: float) -> float | None:
    """Seconds between `now` and an ISO watermark; None before the first watermark (the epoch)."""
    if not watermark_iso:
        return None
    watermark = datetime.fromisoformat(watermark_iso.replace("Z", "+00:00")).timestamp()
    return None if watermark <= 0 else now - watermark


class _ProgressListener(StreamingQueryListener):
    """A listener of micro-batch progress that also knows which queries' ends it has received."""

    def __init__(self) -> None:
        self._terminated: set[str] = set()
        self._changed = threading.Condition()

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        with self._changed:
            self._terminated.add(str(event.id))
            self._changed.notify_all()

    def wait_terminated(self, query_id: str, timeout_s: float) -> bool:
        """Wait until the query's end reached this listener, so every progress event before it did too.

        Spark posts listener events asynchronously, in order: the query's last progress may still be
        queued when awaitTermination() returns.
        """
        with self._changed:
            return self._changed.wait_for(lambda: query_id in self._terminated, timeout_s)


class ConsumerProgressListener(_ProgressListener):
    """Turns each micro-batch's progress into the consumer's gauges and histograms and its log line."""

    def __init__(self, metrics: ConsumerMetrics, batch_log: BatchLog):
        super().__init__()
        self._metrics = metrics
        self._batch_log = batch_log

    def onQueryProgress(self, event) -> None:
        progress = batch_progress(event.progress)
        self._metrics.batch_duration.labels(query=progress.query).observe(progress.duration_s)
        if progress.input_rows_per_second is not None:
            self._metrics.input_rows_per_second.labels(query=progress.query).set(progress.input_rows_per_second)
        if progress.late_rows_dropped:
            self._metrics.late_rows_dropped.inc(progress.late_rows_dropped)
        lag = watermark_lag_seconds(progress.watermark, time.time())
        if lag is not None:
            self._metrics.watermark_lag.set(lag)
        if progress.offsets_behind is not None:
            self._metrics.offsets_behind.set(float(progress.offsets_behind))
        self._batch_log.progressed(progress)


class ProducerProgressListener(_ProgressListener):
    """Counts the rows each producer micro-batch wrote."""

    def __init__(self, metrics: ProducerMetrics):
        super().__init__()
        self._metrics = metrics

    def onQueryProgress(self, event) -> None:
        self._metrics.messages_sent.inc(event.progress.numInputRows)


def start_metrics_server(port: int, registry: CollectorRegistry):
    """Serve `registry` on `port` (all interfaces); port 0 disables. Returns the server or None."""
    if port == 0:
        return None
    server, _thread = start_http_server(port, registry=registry)
    return server


def stop_metrics_server(server) -> None:
    """Stop serving and release the port (shutdown() alone leaves the socket bound)."""
    if server is not None:
        server.shutdown()
        server.server_close()
