"""The consumer job: messages -> valid readings and window statistics in InfluxDB, the rest quarantined."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from hydrostream_jobs import durations
from hydrostream_jobs.cli import AVAILABLE_NOW, ConsumerArgs
from hydrostream_jobs.contract import (
    ID_FIELDS,
    READINGS_MEASUREMENT,
    STATUS_QUARANTINED,
    STATUS_VALID,
    VALUE_FIELDS,
    WINDOW_STATS_MEASUREMENT,
)
from hydrostream_jobs.dead_letter import dead_letter_folder, dead_letter_record
from hydrostream_jobs.handover import HadoopFiles, StartPosition, decide
from hydrostream_jobs.kafka import kafka_reader_options, read_login
from hydrostream_jobs.line_protocol import readings_line, window_stats_line
from hydrostream_jobs.metrics import (
    ConsumerMetrics,
    ConsumerProgressListener,
    start_metrics_server,
    stop_metrics_server,
)
from hydrostream_jobs.progress import BatchCounts, BatchLog
from hydrostream_jobs.schema import decode_messages, parse_readings
from hydrostream_jobs.session import warn_on_checkpoint_partitions
from hydrostream_jobs.sink import InfluxTarget, PartitionResult, write_line_frame
from hydrostream_jobs.token import TokenSource
from hydrostream_jobs.validate import classify, event_time, valid_readings
from hydrostream_jobs.windows import window_stats

CONSUMER_QUERY = "consumer"

log = logging.getLogger(__name__)

# Spark delivers listener events asynchronously; the last batch's arrive within moments of the query's end.
LISTENER_DRAIN_S = 30

# `kind` of a row of the consumer's output (columns kind, line, raw, reason, detail).
KIND_READING = "reading"
KIND_QUARANTINED = "quarantined"
KIND_WINDOW = "window"

# SQL settings of the consumer's query, read when it starts; a value the Spark conf sets wins.
QUERY_CONF = {
    # In update mode a batch without data writes nothing (a window's line goes out with the batch
    # that updates it); it would only evict state, which the next data batch does as well. Off, an
    # available-now run ends with its last data batch rather than one more whole micro-batch.
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
    # Each batch is cached once and read three times (counts, dead letters, lines). Its lines are
    # unique, so compressing the cache saves little memory and doubled its build time (measured).
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    # Constraint propagation infers filters from every projection's expressions; over the checks
    # PruneFilters spent 0.6-0.8 s of a short run's planning on it and pruned nothing (no join here).
    "spark.sql.constraintPropagation.enabled": "false",
}


def start_position(spark: SparkSession, args: ConsumerArgs) -> StartPosition:
    """Where a fresh Kafka checkpoint starts: handed over from the release that ran last (handover.py)."""
    if args.source != "kafka":
        return StartPosition(None, "the file source reads every file it has not read; no handover")
    if not args.handover_from:
        return StartPosition(None, f"no --handover-from: a fresh checkpoint starts at "
                                   f"{args.starting_offsets}")
    return decide(HadoopFiles(spark), args.handover_from, args.checkpoint_location, CONSUMER_QUERY,
                  args.window, args.watermark)


def kafka_source_options(args: ConsumerArgs, position: StartPosition) -> dict[str, str]:
    """The Kafka reader's options for this command line and start position."""
    return kafka_reader_options(
        args.bootstrap_servers or "",
        args.topic,
        args.starting_offsets,
        args.max_offsets_per_trigger,
        args.fail_on_data_loss,
        position.starting_timestamp_ms,
        read_login(args.kafka_user, args.kafka_password_file, args.kafka_password_secret),
    )


def read_messages(spark: SparkSession, args: ConsumerArgs, position: StartPosition) -> DataFrame:
    """The streaming source as one binary `value` column (Kafka values, or lines of files)."""
    if args.source == "kafka":
        options = kafka_source_options(args, position)
        return spark.readStream.format("kafka").options(**options).load().select("value")
    reader = spark.readStream.format("text")
    if args.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    return reader.load(args.input_path).select(F.col("value").cast("binary").alias("value"))


def classified_messages(messages: DataFrame) -> DataFrame:
    """Decode, parse once and classify every message (see validate.classify)."""
    return classify(parse_readings(decode_messages(messages)))


def message_rows(classified: DataFrame) -> DataFrame:
    """A valid reading becomes a `reading` row with its line; anything else a `quarantined` row."""
    valid = F.col("reason").isNull()
    return classified.select(
        F.when(valid, F.lit(KIND_READING)).otherwise(F.lit(KIND_QUARANTINED)).alias("kind"),
        F.when(valid, readings_line()).alias("line"),
        F.when(~valid, F.col("raw")).alias("raw"),
        "reason",
        "detail",
    )


def window_rows(stats: DataFrame) -> DataFrame:
    """A `window` row with its line per updated window, farm and zone."""
    nothing = F.lit(None).cast("string")
    return stats.select(
        F.lit(KIND_WINDOW).alias("kind"),
        window_stats_line().alias("line"),
        nothing.alias("raw"),
        nothing.alias("reason"),
        nothing.alias("detail"),
    )


def consumer_output(messages: DataFrame, window: str, slide: str, watermark: str,
                    complete_from_ms: int | None = None) -> DataFrame:
    """Messages -> message rows and updated window rows, with every message parsed and checked once.

    `complete_from_ms` (a release handover's start) drops the windows that begin before it: their
    earlier readings are not re-read, and the previous release wrote them whole.

    Both branches start from the same exchange of the classified messages, which Spark computes
    once per micro-batch and reuses (ReusedExchange): the parse and the checks are most of the
    work. Both must therefore need every column of `shared`; the generator after it also keeps the
    window branch's filters above the exchange.
    """
    classified = classified_messages(messages)
    shared = classified.select(
        F.xxhash64("raw").alias("shard"),
        F.when(F.col("reason").isNotNull(), F.col("raw")).alias("raw"),
        "reason",
        "detail",
        *ID_FIELDS,
        "time_ns",
        *VALUE_FIELDS,
    ).repartition("shard")
    readings = (
        valid_readings(shared.select(F.inline(F.array(F.struct("*")))))
        .drop("shard")
        .withColumn("event_time", event_time("time_ns"))
    )
    stats = window_stats(readings, window, slide, watermark)
    if complete_from_ms is not None:
        stats = stats.filter(F.col("window_start") >= F.timestamp_millis(F.lit(complete_from_ms)))
    return message_rows(shared).unionByName(window_rows(stats))


def influx_target(args: ConsumerArgs, position: StartPosition) -> InfluxTarget:
    """The sink's plain, picklable connection settings from the command line, and where the previous
    release's readings end when this one was handed over (`position`)."""
    handed_over_until_ns = None
    if position.starting_timestamp_ms is not None:
        # The start is the previous release's event-time position less one window and the watermark.
        until_ms = (position.starting_timestamp_ms + durations.interval_ms(args.window)
                    + durations.interval_ms(args.watermark))
        handed_over_until_ns = until_ms * 1_000_000
    return InfluxTarget(
        url=args.influx_url or "",
        org=args.influx_org or "",
        bucket=args.influx_bucket or "",
        token=TokenSource(file=args.influx_token_file, secret=args.influx_token_secret),
        batch_lines=args.influx_batch_lines,
        max_attempts=args.influx_max_attempts,
        timeout_seconds=args.influx_timeout_seconds,
        freshness_objective_seconds=durations.milliseconds(args.freshness_objective) / 1000,
        handed_over_until_ns=handed_over_until_ns,
    )


def _write_lines(lines: DataFrame, sink: str, target: InfluxTarget | None) -> PartitionResult:
    """Write a one-column DataFrame of lines to the sink; what the executors did (nothing counted but on
    InfluxDB)."""
    if sink == "influxdb" and target is not None:
        return write_line_frame(lines, target)
    if sink == "noop":
        lines.write.format("noop").mode("overwrite").save()
    else:
        lines.show(20, truncate=False)
    return PartitionResult(points=0, retries=0)


@dataclass
class ConsumerBatchWriter:
    """foreachBatch body (runs on the driver): quarantine, write the readings' and windows' lines, count.

    Idempotent per batch: a replayed batch rewrites its dead-letter folder and the same points.
    """

    sink: str
    target: InfluxTarget | None
    dead_letter_path: str
    metrics: ConsumerMetrics
    batch_log: BatchLog

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        kind = F.col("kind")
        staged = batch.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            # At most one row per kind and reason code reaches the driver.
            by_reason = {(row["kind"], row["reason"]): row["count"]
                         for row in staged.groupBy("kind", "reason").count().collect()}
            counts: dict[str, int] = {}
            for (row_kind, _), count in by_reason.items():
                counts[row_kind] = counts.get(row_kind, 0) + count
            if counts.get(KIND_QUARANTINED, 0):
                (
                    staged.filter(kind == KIND_QUARANTINED)
                    .select(dead_letter_record(batch_id))
                    .write.mode("overwrite")
                    .text(dead_letter_folder(self.dead_letter_path, batch_id))
                )
            try:
                lines = staged.filter(kind != KIND_QUARANTINED).select("line")
                written = _write_lines(lines, self.sink, self.target)
            except Exception:
                # The failed partition's own attempts stay on its executor: one failed attempt stands for
                # them, so a batch that fails counts in both the errors and the attempts.
                self.metrics.sink_errors.inc()
                self.metrics.sink_attempts.inc()
                raise
        finally:
            staged.unpersist()
        self.metrics.records.labels(status=STATUS_VALID).inc(counts.get(KIND_READING, 0))
        self.metrics.records.labels(status=STATUS_QUARANTINED).inc(counts.get(KIND_QUARANTINED, 0))
        for (row_kind, reason), count in by_reason.items():
            if row_kind == KIND_QUARANTINED:
                self.metrics.quarantined.labels(reason=reason).inc(count)
        self.metrics.sink_errors.inc(written.retries)
        self.metrics.sink_attempts.inc(written.attempts)
        self.metrics.readings_on_time.inc(written.readings_on_time)
        self.batch_log.counted(batch_id, BatchCounts(
            valid=counts.get(KIND_READING, 0),
            quarantined=counts.get(KIND_QUARANTINED, 0),
            points_written=counts.get(KIND_READING, 0) + counts.get(KIND_WINDOW, 0),
        ))
        if written.points:  # InfluxDB accepted every line of the batch (a lost one raises)
            for measurement, rows in (
                (READINGS_MEASUREMENT, KIND_READING),
                (WINDOW_STATS_MEASUREMENT, KIND_WINDOW),
            ):
                self.metrics.points_written.labels(measurement=measurement).inc(counts.get(rows, 0))


def apply_query_conf(spark: SparkSession) -> None:
    """Set QUERY_CONF on the session, each key unless the Spark conf sets it."""
    configured = spark.sparkContext.getConf()
    for key, value in QUERY_CONF.items():
        if configured.get(key) is None:
            spark.conf.set(key, value)


def start_query(spark: SparkSession, args: ConsumerArgs, metrics: ConsumerMetrics,
                batch_log: BatchLog) -> StreamingQuery:
    """Start the consumer's one query; its checkpoint is the subfolder CONSUMER_QUERY."""
    checkpoint = f"{args.checkpoint_location.rstrip('/')}/{CONSUMER_QUERY}"
    warn_on_checkpoint_partitions(spark, checkpoint)
    apply_query_conf(spark)
    position = start_position(spark, args)
    log.info(position.describe())
    target = influx_target(args, position) if args.sink == "influxdb" else None
    output = consumer_output(read_messages(spark, args, position), args.window, args.slide, args.watermark,
                             position.complete_from_ms)
    stream = (
        output.writeStream.queryName(CONSUMER_QUERY)
        .outputMode("update")
        .foreachBatch(ConsumerBatchWriter(args.sink, target, args.dead_letter_path, metrics, batch_log))
        .option("checkpointLocation", checkpoint)
    )
    if args.trigger == AVAILABLE_NOW:
        stream = stream.trigger(availableNow=True)
    else:
        stream = stream.trigger(processingTime=args.trigger)
    return stream.start()


def run(spark: SparkSession, args: ConsumerArgs, metrics: ConsumerMetrics | None = None) -> ConsumerMetrics:
    """Run the consumer until its query ends (available-now) or fails; returns its metrics.

    Logs a line per micro-batch and, when the query ends, the run's summary.
    """
    metrics = metrics or ConsumerMetrics()
    batch_log = BatchLog()
    server = start_metrics_server(args.metrics_port, metrics.registry)
    listener = ConsumerProgressListener(metrics, batch_log)
    spark.streams.addListener(listener)
    started, outcome, query = time.monotonic(), "interrupted", None
    try:
        # Forget queries that ended earlier in this session, or their failure would be raised again.
        spark.streams.resetTerminated()
        query = start_query(spark, args, metrics, batch_log)
        try:
            query.awaitTermination()
        finally:
            if query.isActive:
                query.stop()
        outcome = "finished"
    except Exception:
        outcome = "failed"
        raise
    finally:
        # Ctrl-C leaves the Spark JVM running (PySpark starts it ignoring SIGINT): its events still come.
        if query is not None and not listener.wait_terminated(query.id, LISTENER_DRAIN_S):
            log.warning("the query's last progress events did not arrive within %d s: the summary may "
                        "miss batches", LISTENER_DRAIN_S)
        batch_log.log_summary(time.monotonic() - started, outcome)
        spark.streams.removeListener(listener)
        stop_metrics_server(server)
    return metrics
