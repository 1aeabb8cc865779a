"""Fixtures of the monitoring tests: the Prometheus tools from Debian's `prometheus` package."""

from __future__ import annotations

import shutil

import pytest


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
