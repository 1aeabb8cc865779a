"""Shared fixtures: a real InfluxDB of the catalog's version (tests/influxdb), one bucket per test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.influxdb import influxdb_build
from tests.influxdb.influxdb_server import InfluxBucket, InfluxServer, influxdb_server


@pytest.fixture(scope="session")
def influxdb_binaries() -> dict[str, Path]:
    """influxd and influx of the catalog's version, built once into the test cache; the test fails (never
    skips) when they cannot be built."""
    try:
        return influxdb_build.ensure_built()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"no influxd {influxdb_build.version()} to test with: {error}. Not skipping: an "
                    f"untested write path is a broken one.", pytrace=False)


@pytest.fixture(scope="session")
def influxd(influxdb_binaries, tmp_path_factory) -> Iterator[InfluxServer]:
    """The session's InfluxDB, set up like the stacks' one."""
    with influxdb_server(influxdb_binaries, tmp_path_factory.mktemp("influxdb")) as server:
        yield server


@pytest.fixture
def influxdb(influxd) -> InfluxBucket:
    """A fresh bucket of the session's InfluxDB with its own write-only and read-only tokens."""
    return influxd.new_bucket()
