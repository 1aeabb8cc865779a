"""The producer job: a rate source (or a counted range) of simulated readings to Kafka or to files."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid
from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from hydrostream_jobs.cli import ProducerArgs
from hydrostream_jobs.kafka import kafka_writer_options
from hydrostream_jobs.metrics import (
    ProducerMetrics,
    ProducerProgressListener,
    start_metrics_server,
    stop_metrics_server,
)
from hydrostream_jobs.simulation import Fleet, simulated_messages

PRODUCER_QUERY = "producer"


class ProducerStalled(RuntimeError):
    """No Kafka write was acknowledged for the send timeout: the job fails instead of waiting forever."""


def stalled_message(args: ProducerArgs, what: str) -> str:
    """The error a stalled producer ends with: what stalled, for how long, and what it means."""
    return (f"producer: {what} for {args.send_timeout} s (--send-timeout) on {args.bootstrap_servers}, "
            f"topic {args.topic}: with acks=all Kafka acknowledges a write only with min.insync.replicas "
            f"in sync and an idempotent producer id (a KRaft quorum); nothing unacknowledged was counted "
            f"as sent, and a rerun sends it again")


def run_watched(spark: SparkSession, action: Callable[[], None], timeout_s: float, message: str,
                poll_s: float = 1.0) -> None:
    """Run a Spark action; cancel it (interrupting its tasks) once no task completed for `timeout_s`.

    Kafka's client bounds a record's delivery (delivery.timeout.ms) but not the wait for an idempotent
    producer id, and Spark's Kafka writer then blocks in flush(): only cancelling the job ends it.
    """
    context = spark.sparkContext
    group = f"hydro-producer-{uuid.uuid4()}"
    context.setJobGroup(group, "producer: counted write to Kafka", interruptOnCancel=True)
    stalled, done = threading.Event(), threading.Event()

    def watch() -> None:
        tracker = context.statusTracker()
        completed, since = -1, time.monotonic()
        while not done.wait(poll_s):
            stages = [tracker.getStageInfo(stage) for job in tracker.getJobIdsForGroup(group)
                      if (info := tracker.getJobInfo(job)) is not None for stage in info.stageIds]
            now_completed = sum(stage.numCompletedTasks for stage in stages if stage is not None)
            if now_completed != completed:
                completed, since = now_completed, time.monotonic()
            elif time.monotonic() - since > timeout_s:
                stalled.set()
                context.cancelJobGroup(group)
                return

    watchdog = threading.Thread(target=watch, name="producer-send-watchdog", daemon=True)
    watchdog.start()
    try:
        action()
    except Exception as error:
        if stalled.is_set():
            raise ProducerStalled(message) from error
        raise
    finally:
        done.set()
        watchdog.join()
        context.setLocalProperty("spark.jobGroup.id", None)


def await_progress(query: StreamingQuery, timeout_s: float, message: str, poll_s: float = 1.0,
                   clock: Callable[[], float] = time.monotonic) -> None:
    """Wait for the query to end; stop it and fail once no micro-batch completed for `timeout_s`."""
    last_batch, since = None, clock()
    while not query.awaitTermination(poll_s):
        progress = query.lastProgress
        batch = progress["batchId"] if progress else None
        if batch != last_batch:
            last_batch, since = batch, clock()
        elif clock() - since > timeout_s:
            query.stop()
            raise ProducerStalled(message)


def fleet(args: ProducerArgs) -> Fleet:
    """The simulated fleet from the command line."""
    return Fleet(
        farms=args.farms,
        devices_per_farm=args.devices_per_farm,
        zones_per_farm=args.zones_per_farm,
        seed=args.seed,
    )


def counted_ticks(spark: SparkSession, count: int, rate: int, start_micros: int) -> DataFrame:
    """`count` ticks, `rate` per second of event time from `start_micros`: deterministic."""
    return spark.range(count).select(
        F.col("id").alias("seq"),
        F.timestamp_micros(F.lit(start_micros) + F.floor(F.col("id") * 1_000_000 / rate)).alias("event_time"),
    )


def rate_ticks(spark: SparkSession, rate: int) -> DataFrame:
    """Endless ticks from Spark's rate source: `rate` per second, event time = now."""
    stream = spark.readStream.format("rate").option("rowsPerSecond", rate).load()
    return stream.select(F.col("value").alias("seq"), F.col("timestamp").alias("event_time"))


def counted_messages(spark: SparkSession, args: ProducerArgs) -> DataFrame:
    """The `--count` messages from `--start-time`: the same messages for the same arguments, any sink."""
    start_micros = int(args.start_time.timestamp()) * 1_000_000 + args.start_time.microsecond
    ticks = counted_ticks(spark, args.count or 0, args.rate, start_micros)
    return simulated_messages(ticks, fleet(args), args.fault_share, args.malformed_share)


def write_files(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Append `--count` messages, one value per line, to text files under `--output-path`."""
    counted_messages(spark, args).select("value").write.mode("append").text(args.output_path)
    metrics.messages_sent.inc(args.count or 0)


def write_kafka_counted(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Send `--count` messages to the Kafka topic and stop; fail if a write task stalls.

    At least once: the write is one batch job, so a producer restarted after a crash sends its
    whole range again. The copies are the same messages (same seed, same event times), which the
    consumer writes to the same points; idempotence only removes duplicates of a retried send.
    A Spark task ends once the brokers acknowledged all its records, so "no task completed for
    --send-timeout" means nothing is being acknowledged.
    """
    writer = (
        counted_messages(spark, args)
        .write.format("kafka")
        .options(**kafka_writer_options(args.bootstrap_servers or "", args.topic, args.send_timeout * 1000))
    )
    run_watched(spark, writer.save, args.send_timeout,
                stalled_message(args, "no write task of the --count messages was acknowledged"))
    metrics.messages_sent.inc(args.count or 0)


def write_kafka(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Stream messages to the Kafka topic until stopped; fail once no micro-batch completes in time."""
    listener = ProducerProgressListener(metrics)
    spark.streams.addListener(listener)
    checkpoint = args.checkpoint_location or tempfile.mkdtemp(prefix="hydro-producer-")
    try:
        messages = simulated_messages(
            rate_ticks(spark, args.rate), fleet(args), args.fault_share, args.malformed_share
        )
        query = (
            messages.writeStream.queryName(PRODUCER_QUERY)
            .format("kafka")
            .options(**kafka_writer_options(args.bootstrap_servers or "", args.topic,
                                            args.send_timeout * 1000))
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime="1 second")
            .start()
        )
        # The rate source always has data: a trigger without a completed batch is a stalled write.
        await_progress(query, args.send_timeout, stalled_message(args, "no micro-batch was acknowledged"))
    finally:
        spark.streams.removeListener(listener)


def run(spark: SparkSession, args: ProducerArgs) -> ProducerMetrics:
    """Run the producer: `--count` messages (to files or Kafka), or forever to Kafka."""
    metrics = ProducerMetrics()
    server = start_metrics_server(args.metrics_port, metrics.registry)
    try:
        if args.sink == "files":
            write_files(spark, args, metrics)
        elif args.count:
            write_kafka_counted(spark, args, metrics)
        else:
            write_kafka(spark, args, metrics)
    finally:
        stop_metrics_server(server)
    return metrics
