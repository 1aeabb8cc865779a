"""A real Prometheus (Debian's 2.42 package) started on a free loopback port with a rendered config."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.render.prometheus_volume import RULE_FILES, RULES_DIR, ScrapeTargets, render_prometheus_config


def write_config(directory: Path, targets: ScrapeTargets,
                 extra_rules: Mapping[str, str] | None = None) -> Path:
    """The rendered config beside a copy of the rules (and `extra_rules`: name -> text), loaded from there."""
    rendered = render_prometheus_config(targets)
    assert rendered.count(RULE_FILES) == 1, "the config must load the rules from the container's rules dir"
    shutil.copytree(RULES_DIR, directory / "rules")
    for name, text in (extra_rules or {}).items():
        (directory / "rules" / name).write_text(text)
    path = directory / "prometheus.yml"
    path.write_text(rendered.replace(RULE_FILES, str(directory / "rules" / "*.yml")))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str) -> Any:
    """The `data` of a Prometheus HTTP API answer, which must be a success."""
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


@dataclass(frozen=True)
class PrometheusServer:
    base: str
    port: int
    process: subprocess.Popen

    def wait_for(self, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """Poll `condition` until it returns something truthy; fail if the server dies or time runs out."""
        deadline = time.monotonic() + timeout_s
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode} while waiting for {what}")
            try:
                value = condition()
                if value:
                    return value
            except OSError as error:
                last_error = error
            time.sleep(0.5)
        pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last error: {last_error})")


@contextmanager
def prometheus_server(binary: str, workdir: Path, alertmanager: str | None = None,
                      extra_rules: Mapping[str, str] | None = None) -> Iterator[PrometheusServer]:
    """Prometheus scraping itself; the job targets point at a closed port, as on a fresh stack.

    Alerts go to `alertmanager` (host:port), by default to a closed port: never to whatever else
    listens on this machine's 9093.
    """
    port, closed = free_port(), free_port()
    targets = ScrapeTargets(
        stack="verify",
        producer=(f"127.0.0.1:{closed}",),
        consumer=(f"127.0.0.2:{closed}",),
        kafka_exporter=(f"127.0.0.3:{closed}",),
        node_exporter=(f"127.0.0.4:{closed}",),
        prometheus=(f"127.0.0.1:{port}",),
        alertmanagers=(alertmanager or f"127.0.0.1:{closed}",),
    )
    config = write_config(workdir, targets, extra_rules)
    with (workdir / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        server = PrometheusServer(f"http://127.0.0.1:{port}", port, process)
        try:
            def ready() -> bool:
                with urllib.request.urlopen(f"{server.base}/-/ready", timeout=2) as response:
                    return response.status == 200
            server.wait_for(ready, 60, "/-/ready")
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
