"""Fixtures of the monitoring tests: Debian's `prometheus` package (promtool and a running server)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from prometheus_server import PrometheusServer, prometheus_server


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: the monitoring tests need Debian's `prometheus` package "
                    f"(`apt-get install prometheus`; .ci/run installs it). Not skipping: an untested "
                    f"rule file is a broken one.", pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; the test fails (never skips) when it is missing."""
    return _tool("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Path of the prometheus server binary; the test fails (never skips) when it is missing."""
    return _tool("prometheus")


@pytest.fixture(scope="session")
def running_prometheus(tmp_path_factory, prometheus_binary) -> Iterator[PrometheusServer]:
    """Debian's prometheus with the rendered config and rules, on a free loopback port."""
    with prometheus_server(prometheus_binary, tmp_path_factory.mktemp("prometheus")) as server:
        yield server
