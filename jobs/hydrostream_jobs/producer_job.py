"""The producer job: a rate source (or a counted range) of simulated readings to Kafka or to files."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from hydrostream_jobs.cli import ProducerArgs
from hydrostream_jobs.kafka import kafka_writer_options, read_login
from hydrostream_jobs.metrics import (
    ProducerMetrics,
    ProducerProgressListener,
    start_metrics_server,
    stop_metrics_server,
)
from hydrostream_jobs.simulation import Fleet, simulated_messages

PRODUCER_QUERY = "producer"

# How often a running producer logs what it sent: often enough to see a stall before --send-timeout.
PROGRESS_LOG_S = 10.0
# Spark delivers listener events asynchronously; the last batch's arrive within moments of the query's end.
LISTENER_DRAIN_S = 30
# SparkJobInfo.status of a job whose task counts no longer change.
ENDED_JOB_STATUSES = ("SUCCEEDED", "FAILED")

log = logging.getLogger(__name__)


class ProducerStalled(RuntimeError):
    """No Kafka write was acknowledged for the send timeout: the job fails instead of waiting forever."""


def stalled_message(args: ProducerArgs, what: str) -> str:
    """The error a stalled producer ends with: what stalled, for how long, and what it means."""
    return (f"producer: {what} for {args.send_timeout} s (--send-timeout) on {args.bootstrap_servers}, "
            f"topic {args.topic}: with acks=all Kafka acknowledges a write only with min.insync.replicas "
            f"in sync and an idempotent producer id (a KRaft quorum); nothing unacknowledged was counted "
            f"as sent, and a rerun sends it again")


@dataclass(frozen=True)
class TaskCounts:
    """A job group's write tasks so far."""

    done: int
    total: int
    failed_attempts: int  # a failed Kafka or file write, retried by Spark or failing the job


class GroupTasks:
    """Counts a job group's tasks over its whole life, though Spark's status tracker forgets old jobs.

    Jobs are numbered in order: the ended ones before the first running job are settled once, so a
    sample asks Spark only about jobs it has not settled (an endless stream starts one per trigger).
    """

    def __init__(self, tracker, group: str) -> None:
        self._tracker = tracker
        self._group = group
        self._settled = TaskCounts(0, 0, 0)
        self._next_job = 0  # every job of the group before it is settled

    def sample(self) -> TaskCounts:
        """The group's task counts now."""
        unsettled: list[TaskCounts] = []
        for job in sorted(j for j in self._tracker.getJobIdsForGroup(self._group) if j >= self._next_job):
            info = self._tracker.getJobInfo(job)
            if info is None:
                continue
            stages = [stage for stage_id in info.stageIds
                      if (stage := self._tracker.getStageInfo(stage_id)) is not None]
            counts = _sum_counts([TaskCounts(stage.numCompletedTasks, stage.numTasks, stage.numFailedTasks)
                                  for stage in stages])
            if info.status in ENDED_JOB_STATUSES and not unsettled:
                self._settled, self._next_job = _sum_counts([self._settled, counts]), job + 1
            else:
                unsettled.append(counts)
        return _sum_counts([self._settled, *unsettled])


def _sum_counts(counts: list[TaskCounts]) -> TaskCounts:
    return TaskCounts(sum(c.done for c in counts), sum(c.total for c in counts),
                      sum(c.failed_attempts for c in counts))


@contextmanager
def periodically(seconds: float, report: Callable[[], None]) -> Iterator[None]:
    """Call `report` every `seconds` on a daemon thread while the block runs."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            report()

    thread = threading.Thread(target=loop, name="producer-progress-log", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def rate_per_s(count: int, seconds: float) -> float:
    """Readings per second; 0 for an instant."""
    return count / seconds if seconds > 0 else 0.0


def new_job_group() -> str:
    """A job group name of its own for one write."""
    return f"hydro-producer-{uuid.uuid4()}"


@contextmanager
def job_group(spark: SparkSession, group: str, description: str) -> Iterator[None]:
    """Run the Spark jobs this thread starts in the block under `group` (cancellable, countable)."""
    context = spark.sparkContext
    context.setJobGroup(group, description, interruptOnCancel=True)
    try:
        yield
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)


def run_watched(spark: SparkSession, action: Callable[[], None], timeout_s: float, message: str,
                poll_s: float = 1.0, group: str | None = None) -> None:
    """Run a Spark action; cancel it (interrupting its tasks) once no task completed for `timeout_s`.

    Kafka's client bounds a record's delivery (delivery.timeout.ms) but not the wait for an idempotent
    producer id, and Spark's Kafka writer then blocks in flush(): only cancelling the job ends it.
    """
    context = spark.sparkContext
    group = group or new_job_group()
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
        with job_group(spark, group, "producer: counted write to Kafka"):
            action()
    except Exception as error:
        if stalled.is_set():
            raise ProducerStalled(message) from error
        raise
    finally:
        done.set()
        watchdog.join()


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


def write_counted(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics, destination: str,
                  write: Callable[[str], None]) -> None:
    """Run `write(job_group)` of the `--count` messages; log its tasks every PROGRESS_LOG_S and its total.

    A counted write is one Spark job: how many messages it has written is known only when it ends,
    so the progress lines count its tasks.
    """
    count = args.count or 0
    group = new_job_group()
    tasks = GroupTasks(spark.sparkContext.statusTracker(), group)
    started = time.monotonic()

    def progress() -> None:
        now = tasks.sample()
        log.info("progress: %d readings to %s: write_tasks_done=%d/%d failed_task_attempts=%d elapsed_s=%.0f",
                 count, destination, now.done, now.total, now.failed_attempts, time.monotonic() - started)

    with periodically(PROGRESS_LOG_S, progress):
        write(group)
    metrics.messages_sent.inc(count)
    elapsed = time.monotonic() - started
    log.info("done: wrote %d readings to %s in %.1f s (%.1f/s), failed_task_attempts=%d", count, destination,
             elapsed, rate_per_s(count, elapsed), tasks.sample().failed_attempts)


def write_files(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Append `--count` messages, one value per line, to text files under `--output-path`."""

    def write(group: str) -> None:
        with job_group(spark, group, "producer: counted write to files"):
            counted_messages(spark, args).select("value").write.mode("append").text(args.output_path)

    write_counted(spark, args, metrics, f"files under {args.output_path}", write)


def kafka_destination(args: ProducerArgs) -> str:
    """Where Kafka writes go, for the log."""
    return f"topic {args.topic} on {args.bootstrap_servers}"


def writer_options(args: ProducerArgs) -> dict[str, str]:
    """The Kafka sink's options for this command line, logged in as --kafka-user when given."""
    login = read_login(args.kafka_user, args.kafka_password_file, args.kafka_password_secret)
    return kafka_writer_options(args.bootstrap_servers or "", args.topic, args.send_timeout * 1000, login)


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
        .options(**writer_options(args))
    )
    message = stalled_message(args, "no write task of the --count messages was acknowledged")

    def write(group: str) -> None:
        run_watched(spark, writer.save, args.send_timeout, message, group=group)

    write_counted(spark, args, metrics, kafka_destination(args), write)


class StreamSendLog:
    """What an endless producer logs: what it sent since its last line, and its total when it ends."""

    def __init__(self, metrics: ProducerMetrics, tasks: GroupTasks, args: ProducerArgs) -> None:
        self._metrics = metrics
        self._tasks = tasks
        self._args = args
        self._started = self._last_at = time.monotonic()
        self._last_sent = 0

    def progress(self) -> None:
        """Log the count so far, the rate since the last line and the failed write attempts."""
        now, sent = time.monotonic(), self._metrics.sent()
        log.info("progress: sent=%d rate=%.1f/s (--rate %d) failed_task_attempts=%d elapsed_s=%.0f", sent,
                 rate_per_s(sent - self._last_sent, now - self._last_at), self._args.rate,
                 self._tasks.sample().failed_attempts, now - self._started)
        self._last_sent, self._last_at = sent, now

    def final(self, outcome: str) -> None:
        """Log the total: `outcome` is stopped, failed or interrupted."""
        elapsed, sent = time.monotonic() - self._started, self._metrics.sent()
        log.info("%s: sent %d readings to %s in %.1f s (%.1f/s), failed_task_attempts=%d", outcome, sent,
                 kafka_destination(self._args), elapsed, rate_per_s(sent, elapsed),
                 self._tasks.sample().failed_attempts)


def write_kafka(spark: SparkSession, args: ProducerArgs, metrics: ProducerMetrics) -> None:
    """Stream messages to the Kafka topic until stopped; fail once no micro-batch completes in time."""
    listener = ProducerProgressListener(metrics)
    spark.streams.addListener(listener)
    checkpoint = args.checkpoint_location or tempfile.mkdtemp(prefix="hydro-producer-")
    query, send_log, outcome = None, None, "interrupted"
    try:
        messages = simulated_messages(
            rate_ticks(spark, args.rate), fleet(args), args.fault_share, args.malformed_share
        )
        query = (
            messages.writeStream.queryName(PRODUCER_QUERY)
            .format("kafka")
            .options(**writer_options(args))
            .option("checkpointLocation", checkpoint)
            .trigger(processingTime="1 second")
            .start()
        )
        # Spark runs a query's jobs in the job group of its run id.
        tasks = GroupTasks(spark.sparkContext.statusTracker(), str(query.runId))
        send_log = StreamSendLog(metrics, tasks, args)
        with periodically(PROGRESS_LOG_S, send_log.progress):
            # The rate source always has data: a trigger without a completed batch is a stalled write.
            await_progress(query, args.send_timeout, stalled_message(args, "no micro-batch was acknowledged"))
        outcome = "stopped"
    except Exception:
        outcome = "failed"
        raise
    finally:
        # Ctrl-C leaves the Spark JVM running (PySpark starts it ignoring SIGINT): its events still come.
        if query is not None:
            if query.isActive:
                query.stop()
            listener.wait_terminated(query.id, LISTENER_DRAIN_S)
        if send_log is not None:
            send_log.final(outcome)
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
