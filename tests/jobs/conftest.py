"""Fixtures of the jobs suite: one local SparkSession for the session, and a fault-injecting proxy in front of
the real InfluxDB (tests/conftest.py's `influxdb`, a bucket per test)."""

from __future__ import annotations

import os
import sys

import pytest

from tests.jobs.influx_fake import FakeInflux

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

# Also used by the tests that start the real command lines in a subprocess.
LOCAL_MASTER = "local[2]"
SHUFFLE_PARTITIONS = "2"


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master(LOCAL_MASTER)
        .appName("hydrostream-jobs-tests")
        .config("spark.sql.shuffle.partitions", SHUFFLE_PARTITIONS)
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.streaming.forceDeleteTempCheckpointLocation", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def influx_proxy(influxdb):
    """Scripted faults in front of the test's real InfluxDB bucket: `url`, `org`, `bucket` and `token`
    (write-only) to give the consumer; read back through `influxdb`."""
    proxy = FakeInflux(token=influxdb.token, org=influxdb.org, bucket=influxdb.bucket, upstream=influxdb.url)
    proxy.start()
    yield proxy
    proxy.stop()
