"""The producer job: a rate source (or a counted range) of simulated readings to Kafka or to files."""

from __future__ import annotations

import tempfile

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

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
    """Send `--count` messages to the Kafka topic and stop.

    At least once: the write is one batch job, so a producer restarted after a crash sends its
    whole range again. The copies are the same messages (same seed, same event times), which the
    consumer writes to the same points; idempotence only removes duplicates of a retried send.
    """
    (
        counted_messages(spark, args)
        .write.format("kafka")
        .options(**kafka_writer_options(args.bootstrap_servers or "", args.topic))
        .save()
    )
    metrics.messages_sent.inc(args.count or 0)


def write_kafka(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Stream messages to the Kafka topic until stopped."""
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
            .options(**kafka_writer_options(args.bootstrap_servers or "", args.topic))
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime="1 second")
            .start()
        )
        query.awaitTermination()
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
