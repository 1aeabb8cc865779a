"""Executor-side InfluxDB v2 writer: gzip batches of pre-built lines, retries with backoff, loud failure.

Each partition also counts its write attempts (the sink error ratio's denominator) and, once InfluxDB has
accepted a request, how many of its sensor_readings points are there within the freshness objective of
their event time (the line's own timestamp): the freshness SLI, measured where the point lands.

Everything handed to executors is a module-level function plus a frozen dataclass of plain values,
so it pickles by reference and never drags a client, a lock or a metric along.
"""

from __future__ import annotations

import dataclasses
import email.utils
import gzip
import http.client
import random
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from datetime import timezone
from functools import partial

from pyspark.rdd import RDD
from pyspark.serializers import NoOpSerializer
from pyspark.sql import DataFrame

from hydrostream_jobs.contract import INFLUX_PRECISION, INFLUX_WRITE_PATH, READINGS_MEASUREMENT
from hydrostream_jobs.token import TokenSource, read_token

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Refused, reset, timed out or dropped mid-response (OSError covers socket timeouts).
_RETRYABLE_ERRORS = (OSError, http.client.HTTPException)
# A sensor_readings line starts with its measurement and a tag (sensor_window_stats lines do not).
_READING_PREFIX = f"{READINGS_MEASUREMENT},".encode()


class SinkWriteError(RuntimeError):
    """A batch could not be written; raised so Spark fails the micro-batch and replays it."""


@dataclasses.dataclass(frozen=True)
class InfluxTarget:
    """Connection settings of one InfluxDB bucket, and the freshness objective its readings are counted
    against. Plain values only: safe to ship to executors."""

    url: str
    org: str
    bucket: str
    token: TokenSource
    # No defaults: the consumer's command line holds them (--influx-batch-lines, --influx-max-attempts,
    # --influx-timeout-seconds, --freshness-objective), one place for a value users set.
    batch_lines: int
    max_attempts: int
    timeout_seconds: float
    freshness_objective_seconds: float
    # A release handover re-reads what the previous release wrote, on time, up to this event time
    # (handover.py): rewriting those readings late does not make them late. None: no handover.
    handed_over_until_ns: int | None = None
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    retry_after_max_seconds: float = 120.0
    gzip_level: int = 1


@dataclasses.dataclass(frozen=True)
class PartitionResult:
    """What one partition did: lines sent, write attempts and those retried, and the sensor_readings
    points among the lines with those accepted within the freshness objective. Small and picklable."""

    points: int
    retries: int
    attempts: int = 0
    readings: int = 0
    readings_on_time: int = 0


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    reference = now if now is not None else time.time()
    return max(0.0, when.timestamp() - reference)


def backoff_seconds(attempt: int, target: InfluxTarget, retry_after: float | None) -> float:
    """Delay before attempt `attempt + 1`: Retry-After when given, else capped exponential with jitter."""
    if retry_after is not None:
        return min(retry_after, target.retry_after_max_seconds)
    ceiling = min(target.backoff_max_seconds, target.backoff_initial_seconds * (2 ** (attempt - 1)))
    return ceiling * (0.5 + random.random() / 2)


class _Connection:
    """One keep-alive HTTP(S) connection to the write endpoint, reopened after any error."""

    def __init__(self, target: InfluxTarget):
        parts = urllib.parse.urlsplit(target.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        query = urllib.parse.urlencode(
            {"org": target.org, "bucket": target.bucket, "precision": INFLUX_PRECISION}
        )
        self.path = f"{parts.path.rstrip('/')}{INFLUX_WRITE_PATH}?{query}"
        self._timeout = target.timeout_seconds
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str | None, bytes]:
        if self._conn is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = kind(self._host, self._port, timeout=self._timeout)
        try:
            self._conn.request("POST", self.path, body=body, headers=headers)
            response = self._conn.getresponse()
            payload = response.read()
            return response.status, response.getheader("Retry-After"), payload
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def post_batch(connection: _Connection, body: bytes, target: InfluxTarget, lines: int) -> int:
    """POST one gzip body until accepted; returns retries used; raises SinkWriteError when exhausted."""
    headers = {
        "Authorization": f"Token {read_token(target.token)}",
        "Content-Encoding": "gzip",
        "Content-Type": "text/plain; charset=utf-8",
        "Accept": "application/json",
    }
    last_problem = ""
    for attempt in range(1, target.max_attempts + 1):
        retry_after = None
        try:
            status, retry_after_header, payload = connection.post(body, headers)
        except _RETRYABLE_ERRORS as error:
            last_problem = f"{type(error).__name__}: {error}"
        else:
            if 200 <= status < 300:
                return attempt - 1
            detail = payload[:300].decode("utf-8", "replace")
            if status not in RETRYABLE_STATUSES:
                raise SinkWriteError(f"InfluxDB rejected a batch of {lines} lines: HTTP {status} {detail}")
            last_problem = f"HTTP {status} {detail}"
            retry_after = retry_after_seconds(retry_after_header)
        if attempt < target.max_attempts:
            time.sleep(backoff_seconds(attempt, target, retry_after))
    raise SinkWriteError(
        f"InfluxDB write of {lines} lines failed after {target.max_attempts} attempts; last: {last_problem}"
    )


def write_lines(lines: Iterable[bytes], target: InfluxTarget) -> PartitionResult:
    """Write UTF-8 line-protocol lines in gzip batches of `target.batch_lines`; raise when a batch is lost."""
    connection = _Connection(target)
    result = PartitionResult(points=0, retries=0)
    batch: list[bytes] = []
    try:
        for line in lines:
            batch.append(line)
            if len(batch) >= target.batch_lines:
                result = add_results(result, _send(connection, batch, target))
                batch = []
        if batch:
            result = add_results(result, _send(connection, batch, target))
    finally:
        connection.close()
    return result


def _send(connection: _Connection, batch: list[bytes], target: InfluxTarget) -> PartitionResult:
    body = gzip.compress(b"\n".join(batch), compresslevel=target.gzip_level)
    retries = post_batch(connection, body, target, len(batch))
    readings, on_time = count_on_time(batch, time.time_ns(), target.freshness_objective_seconds,
                                      target.handed_over_until_ns)
    return PartitionResult(points=len(batch), retries=retries, attempts=retries + 1, readings=readings,
                           readings_on_time=on_time)


def count_on_time(lines: Iterable[bytes], accepted_ns: int, objective_seconds: float,
                  handed_over_until_ns: int | None = None) -> tuple[int, int]:
    """(sensor_readings lines, those on time): a reading is on time when its event time is at most
    `objective_seconds` before `accepted_ns` (when InfluxDB accepted it), or before `handed_over_until_ns`
    (the previous release wrote it). A line's event time is its last field, in nanoseconds."""
    oldest_on_time = accepted_ns - int(objective_seconds * 1_000_000_000)
    rewritten_before = handed_over_until_ns if handed_over_until_ns is not None else -1
    readings = on_time = 0
    for line in lines:
        if line.startswith(_READING_PREFIX):
            readings += 1
            event_ns = int(line[line.rindex(b" ") + 1:])
            on_time += event_ns >= oldest_on_time or event_ns < rewritten_before
    return readings, on_time


def write_partition(lines: Iterable[bytes], target: InfluxTarget) -> Iterator[PartitionResult]:
    """mapPartitions body: one UTF-8 line-protocol line per element; yields the partition's result."""
    yield write_lines(lines, target)


def utf8_lines(lines: DataFrame) -> RDD:
    """The one string column of `lines` as an RDD of UTF-8 bytes.

    The JVM sends strings to Python as length-prefixed UTF-8 frames (as DataFrame.toJSON does),
    much cheaper than pickled Rows; NoOpSerializer hands the frames over undecoded.
    """
    session = lines.sparkSession
    strings = getattr(lines._jdf, "as")(session._jvm.org.apache.spark.sql.Encoders.STRING())
    return RDD(strings.javaRDD(), session.sparkContext, NoOpSerializer())


def write_line_frame(lines: DataFrame, target: InfluxTarget) -> PartitionResult:
    """Write a one-column DataFrame of lines from the executors; only per-partition counts come back."""
    per_partition = utf8_lines(lines).mapPartitions(partial(write_partition, target=target))
    return per_partition.fold(PartitionResult(points=0, retries=0), add_results)


def add_results(left: PartitionResult, right: PartitionResult) -> PartitionResult:
    """Sum two partition results."""
    return PartitionResult(*(a + b for a, b in zip(dataclasses.astuple(left), dataclasses.astuple(right),
                                                   strict=True)))
