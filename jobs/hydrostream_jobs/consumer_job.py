"""The consumer job: messages -> valid readings and window statistics in InfluxDB, the rest quarantined."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from hydrostream_jobs.cli import AVAILABLE_NOW, ConsumerArgs
from hydrostream_jobs.contract import (
    READINGS_MEASUREMENT,
    STATUS_QUARANTINED,
    STATUS_VALID,
    WINDOW_STATS_MEASUREMENT,
)
from hydrostream_jobs.dead_letter import dead_letter_folder, dead_letter_record
from hydrostream_jobs.kafka import kafka_reader_options
from hydrostream_jobs.line_protocol import readings_line, window_stats_line
from hydrostream_jobs.metrics import ConsumerMetrics, ConsumerProgressListener, start_metrics_server
from hydrostream_jobs.schema import decode_messages, parse_readings
from hydrostream_jobs.sink import InfluxTarget, write_line_frame
from hydrostream_jobs.token import TokenSource
from hydrostream_jobs.validate import classify, valid_readings
from hydrostream_jobs.windows import window_stats

READINGS_QUERY = "readings"
WINDOW_STATS_QUERY = "window_stats"


def read_messages(spark: SparkSession, args: ConsumerArgs) -> DataFrame:
    """The streaming source as one binary `value` column (Kafka values, or lines of files)."""
    if args.source == "kafka":
        options = kafka_reader_options(
            args.bootstrap_servers or "",
            args.topic,
            args.starting_offsets,
            args.max_offsets_per_trigger,
            args.fail_on_data_loss,
        )
        return spark.readStream.format("kafka").options(**options).load().select("value")
    reader = spark.readStream.format("text")
    if args.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", args.max_files_per_trigger)
    return reader.load(args.input_path).select(F.col("value").cast("binary").alias("value"))


def classified_messages(messages: DataFrame) -> DataFrame:
    """Decode, parse once and classify every message (see validate.classify)."""
    return classify(parse_readings(decode_messages(messages)))


def influx_target(args: ConsumerArgs) -> InfluxTarget:
    """The sink's plain, picklable connection settings from the command line."""
    return InfluxTarget(
        url=args.influx_url or "",
        org=args.influx_org or "",
        bucket=args.influx_bucket or "",
        token=TokenSource(file=args.influx_token_file, secret=args.influx_token_secret),
        batch_lines=args.influx_batch_lines,
        max_attempts=args.influx_max_attempts,
        timeout_seconds=args.influx_timeout_seconds,
    )


def _write_lines(lines: DataFrame, sink: str, target: InfluxTarget | None) -> tuple[int, int]:
    """Write a one-column DataFrame of lines to the sink; returns (points written, retried attempts)."""
    if sink == "influxdb" and target is not None:
        result = write_line_frame(lines, target)
        return result.points, result.retries
    if sink == "noop":
        lines.write.format("noop").mode("overwrite").save()
    else:
        lines.show(20, truncate=False)
    return 0, 0


@dataclass
class ReadingsBatchWriter:
    """foreachBatch body (runs on the driver): quarantine, write readings, count. Idempotent per batch."""

    sink: str
    target: InfluxTarget | None
    dead_letter_path: str
    metrics: ConsumerMetrics

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        valid = F.col("reason").isNull()
        staged = batch.select(
            valid.alias("valid"),
            F.when(valid, readings_line()).otherwise(dead_letter_record(batch_id)).alias("payload"),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = {row["valid"]: row["count"] for row in staged.groupBy("valid").count().toLocalIterator()}
            quarantined = counts.get(False, 0)
            if quarantined:
                (
                    staged.filter(~F.col("valid"))
                    .select("payload")
                    .write.mode("overwrite")
                    .text(dead_letter_folder(self.dead_letter_path, batch_id))
                )
            try:
                points, retries = _write_lines(
                    staged.filter("valid").select("payload"), self.sink, self.target
                )
            except Exception:
                self.metrics.sink_errors.inc()
                raise
        finally:
            staged.unpersist()
        self.metrics.records.labels(status=STATUS_VALID).inc(counts.get(True, 0))
        self.metrics.records.labels(status=STATUS_QUARANTINED).inc(quarantined)
        self.metrics.points_written.labels(measurement=READINGS_MEASUREMENT).inc(points)
        self.metrics.sink_errors.inc(retries)


@dataclass
class WindowStatsBatchWriter:
    """foreachBatch body (runs on the driver) of the window query: rewrite the updated windows."""

    sink: str
    target: InfluxTarget | None
    metrics: ConsumerMetrics

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        try:
            points, retries = _write_lines(batch.select(window_stats_line()), self.sink, self.target)
        except Exception:
            self.metrics.sink_errors.inc()
            raise
        self.metrics.points_written.labels(measurement=WINDOW_STATS_MEASUREMENT).inc(points)
        self.metrics.sink_errors.inc(retries)


def _start(frame: DataFrame, name: str, writer, output_mode: str, args: ConsumerArgs) -> StreamingQuery:
    stream = (
        frame.writeStream.queryName(name)
        .outputMode(output_mode)
        .foreachBatch(writer)
        .option("checkpointLocation", f"{args.checkpoint_location.rstrip('/')}/{name}")
    )
    if args.trigger == AVAILABLE_NOW:
        stream = stream.trigger(availableNow=True)
    else:
        stream = stream.trigger(processingTime=args.trigger)
    return stream.start()


def start_queries(spark: SparkSession, args: ConsumerArgs, metrics: ConsumerMetrics) -> list[StreamingQuery]:
    """Start the readings query and the window query, each with its own checkpoint subfolder."""
    target = influx_target(args) if args.sink == "influxdb" else None
    readings = _start(
        classified_messages(read_messages(spark, args)),
        READINGS_QUERY,
        ReadingsBatchWriter(args.sink, target, args.dead_letter_path, metrics),
        "append",
        args,
    )
    stats = window_stats(
        valid_readings(classified_messages(read_messages(spark, args))),
        args.window,
        args.slide,
        args.watermark,
    )
    windows = _start(
        stats, WINDOW_STATS_QUERY, WindowStatsBatchWriter(args.sink, target, metrics), "update", args
    )
    return [readings, windows]


def await_queries(spark: SparkSession, queries: list[StreamingQuery]) -> None:
    """Block until every query ends; the first failure stops the others and is raised."""
    try:
        while any(query.isActive for query in queries):
            spark.streams.awaitAnyTermination()
            spark.streams.resetTerminated()
        for query in queries:
            error = query.exception()
            if error is not None:
                raise error
    finally:
        for query in queries:
            if query.isActive:
                query.stop()


def run(spark: SparkSession, args: ConsumerArgs, metrics: ConsumerMetrics | None = None) -> ConsumerMetrics:
    """Run the consumer until its queries end (available-now) or fail; returns its metrics."""
    metrics = metrics or ConsumerMetrics()
    server = start_metrics_server(args.metrics_port, metrics.registry)
    listener = ConsumerProgressListener(metrics)
    spark.streams.addListener(listener)
    try:
        # Forget queries that ended earlier in this session, or their failure would be raised again.
        spark.streams.resetTerminated()
        await_queries(spark, start_queries(spark, args, metrics))
    finally:
        spark.streams.removeListener(listener)
        if server is not None:
            server.shutdown()
    return metrics
