"""The SparkSession of an entry point: UTC session time, workers on the driver's Python."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession


def spark_session(app_name: str, master: str | None) -> SparkSession:
    """Build the job's session; shuffle partitions and resources come from the cluster's Spark conf."""
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
    return spark
