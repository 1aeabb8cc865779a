"""Fixtures of the monitoring tests: Debian's `prometheus` (promtool, a running server) and
`prometheus-alertmanager` (amtool, the alertmanager server) packages."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from prometheus_server import PrometheusServer, prometheus_server


def _tool(name: str, package: str = "prometheus", *aliases: str) -> str:
    for candidate in (name, *aliases):
        path = shutil.which(candidate)
        if path is not None:
            return path
    pytest.fail(f"{name} is not installed: the monitoring tests need Debian's `{package}` package "
                f"(`apt-get install {package}`; .ci/run installs it). Not skipping: an untested "
                f"rule file or alerting config is a broken one.", pytrace=False)


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


@pytest.fixture(scope="session")
def amtool() -> str:
    """Path of amtool; the test fails (never skips) when it is missing."""
    return _tool("amtool", "prometheus-alertmanager")


@pytest.fixture(scope="session")
def alertmanager_binary() -> str:
    """Path of the Alertmanager server (Debian names it prometheus-alertmanager); fails when missing."""
    return _tool("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")
