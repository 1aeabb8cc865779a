"""Fixtures of the monitoring tests: Debian's `prometheus` package (promtool, a running server), and
amtool and the alertmanager server of the catalog's version, built from the Go module proxy
(alertmanager_build.py)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import alertmanager_build
import pytest
from prometheus_server import PrometheusServer, prometheus_server


def _tool(name: str, package: str = "prometheus") -> str:
    path = shutil.which(name)
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
def alertmanager_tools() -> dict[str, str]:
    """amtool and alertmanager of the catalog's version, built once into the test cache; the test fails
    (never skips) when they cannot be built."""
    try:
        return {tool: str(path) for tool, path in alertmanager_build.ensure_built().items()}
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"no alertmanager {alertmanager_build.version()} to test with: {error}. Not skipping: "
                    f"an untested alerting config is a broken one.", pytrace=False)


@pytest.fixture(scope="session")
def amtool(alertmanager_tools) -> str:
    """Path of amtool (the catalog's Alertmanager version)."""
    return alertmanager_tools["amtool"]


@pytest.fixture(scope="session")
def alertmanager_binary(alertmanager_tools) -> str:
    """Path of the Alertmanager server (the catalog's version)."""
    return alertmanager_tools["alertmanager"]
