"""The SparkSession of an entry point: UTC session time, workers on the driver's Python, shuffle size."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from pyspark.sql import SparkSession

SHUFFLE_PARTITIONS_KEY = "spark.sql.shuffle.partitions"
# Two tasks per core keep every core busy when partitions are uneven, without the fixed cost of
# Spark's default 200 tasks per stage on a small micro-batch (measured about 6x slower here).
PARTITIONS_PER_CORE = 2

log = logging.getLogger(__name__)


def spark_session(app_name: str, master: str | None, shuffle_partitions: int | None = None) -> SparkSession:
    """Build the job's session; resources come from the cluster's Spark conf, shuffle size see below.

    Shuffle partitions: `shuffle_partitions` when given, else the Spark conf's value when it sets
    one (spark-submit --conf, spark-defaults, Dataproc properties), else PARTITIONS_PER_CORE x the
    cores Spark has (defaultParallelism). The choice is logged.
    """
    # Workers must run the interpreter the driver runs (same packages, same version) unless the
    # cluster says otherwise (Dataproc sets spark.pyspark.python / PYSPARK_PYTHON).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master:
        builder = builder.master(master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    count, why = shuffle_partitions_choice(spark, shuffle_partitions)
    spark.conf.set(SHUFFLE_PARTITIONS_KEY, str(count))
    log.info("%s=%d (%s)", SHUFFLE_PARTITIONS_KEY, count, why)
    return spark


@contextmanager
def job_session(
    app_name: str, master: str | None, shuffle_partitions: int | None = None
) -> Iterator[SparkSession]:
    """An entry point's session (`spark_session`), stopped however the job ends."""
    spark = spark_session(app_name, master, shuffle_partitions)
    try:
        yield spark
    finally:
        spark.stop()


def shuffle_partitions_choice(spark: SparkSession, requested: int | None) -> tuple[int, str]:
    """The shuffle partition count this session should use, and why."""
    if requested is not None:
        if requested <= 0:
            raise ValueError(f"shuffle partitions must be a positive integer, not {requested}")
        return requested, "--shuffle-partitions"
    configured = spark.sparkContext.getConf().get(SHUFFLE_PARTITIONS_KEY)
    if configured is not None:
        return int(configured), "set by the Spark conf"
    cores = spark.sparkContext.defaultParallelism
    return PARTITIONS_PER_CORE * cores, f"not set by the Spark conf: {PARTITIONS_PER_CORE} x {cores} cores"


def shuffle_partitions_in_offsets(text: str) -> int | None:
    """The shuffle partition count recorded in one offsets-log file, None when it records none.

    The file is `v1`, then a JSON metadata line whose `conf` map holds the SQL settings a query
    keeps for the life of its checkpoint, then one line per source.
    """
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].startswith("v"):
        raise ValueError(f"not a Spark offsets-log file (first line {lines[0][:20] if lines else ''!r})")
    value = json.loads(lines[1]).get("conf", {}).get(SHUFFLE_PARTITIONS_KEY)
    return int(value) if value is not None else None


def checkpoint_shuffle_partitions(spark: SparkSession, checkpoint: str) -> int | None:
    """The shuffle partition count a query's checkpoint was started with; None before its first batch.

    Read through Hadoop's FileSystem so a gs:// checkpoint works as a local one does.
    """
    jvm = spark.sparkContext._jvm
    offsets = jvm.org.apache.hadoop.fs.Path(f"{checkpoint.rstrip('/')}/offsets")
    fs = offsets.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(offsets):
        return None
    batches = [int(s.getPath().getName()) for s in fs.listStatus(offsets) if s.getPath().getName().isdigit()]
    if not batches:
        return None
    stream = fs.open(jvm.org.apache.hadoop.fs.Path(offsets, str(max(batches))))
    try:
        text = jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()
    return shuffle_partitions_in_offsets(text)


def warn_on_checkpoint_partitions(spark: SparkSession, checkpoint: str) -> int | None:
    """Warn when `checkpoint` was started with another shuffle partition count; returns its count."""
    recorded = checkpoint_shuffle_partitions(spark, checkpoint)
    configured = int(spark.conf.get(SHUFFLE_PARTITIONS_KEY))
    if recorded is not None and recorded != configured:
        log.warning(
            "checkpoint %s was started with %s=%d, this session is configured with %d: the checkpoint "
            "wins, the query keeps running with %d shuffle partitions (start from a new checkpoint to "
            "change it)",
            checkpoint,
            SHUFFLE_PARTITIONS_KEY,
            recorded,
            configured,
            recorded,
        )
    return recorded
