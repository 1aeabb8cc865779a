"""A real Prometheus (Debian's 2.42 package) started on a free loopback port with a rendered config."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from local_server import LocalServer, local_server
from stack_rules import rule_texts

from infra.render.prometheus_volume import (
    EVALUATION_INTERVAL,
    RULE_FILES,
    ScrapeTargets,
    render_prometheus_config,
)
from tests.ports import free_port


def write_config(directory: Path, targets: ScrapeTargets, extra_rules: Mapping[str, str] | None = None,
                 evaluation_interval: str | None = None, stack: str = "dev") -> Path:
    """The rendered config beside the rules rendered for `stack` (and `extra_rules`: name -> text), loaded
    from there; with `evaluation_interval`, rules are evaluated that often instead (a test's shortcut)."""
    rendered = render_prometheus_config(targets)
    assert rendered.count(RULE_FILES) == 1, "the config must load the rules from the container's rules dir"
    if evaluation_interval is not None:
        line = f"evaluation_interval: {EVALUATION_INTERVAL}"
        assert rendered.count(line) == 1, rendered
        rendered = rendered.replace(line, f"evaluation_interval: {evaluation_interval}")
    (directory / "rules").mkdir(parents=True)
    for name, text in {**rule_texts(stack), **(extra_rules or {})}.items():
        (directory / "rules" / name).write_text(text)
    path = directory / "prometheus.yml"
    path.write_text(rendered.replace(RULE_FILES, str(directory / "rules" / "*.yml")))
    return path


def get_json(url: str) -> Any:
    """The `data` of a Prometheus HTTP API answer, which must be a success."""
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


# What the tests hold: a `LocalServer` (base, port, process, wait_for).
PrometheusServer = LocalServer


@contextmanager
def prometheus_server(binary: str, workdir: Path, alertmanager: str | None = None,
                      extra_rules: Mapping[str, str] | None = None,
                      evaluation_interval: str | None = None,
                      influxdb: str | None = None,
                      kafka: Sequence[str] = ()) -> Iterator[PrometheusServer]:
    """Prometheus scraping itself; the other job targets point at a closed port, as on a fresh stack, but
    for those given: `alertmanager` and `influxdb` (host:port) and `kafka` (host:port of the brokers'
    metrics agents) are scraped.

    Alerts go to `alertmanager` (host:port), by default to a closed port: never to whatever else
    listens on this machine's 9093. `extra_rules` (file name -> text) are written into the rules folder
    after the shipped ones, so one of the same name replaces its copy.
    """
    port, closed = free_port(), free_port()
    targets = ScrapeTargets(
        stack="verify",
        producer=(f"127.0.0.1:{closed}",),
        consumer=(f"127.0.0.2:{closed}",),
        kafka=tuple(kafka) or (f"127.0.0.3:{closed}",),
        node_exporter=(f"127.0.0.4:{closed}",),
        influxdb=(influxdb or f"127.0.0.5:{closed}",),
        prometheus=(f"127.0.0.1:{port}",),
        alertmanager=(alertmanager or f"127.0.0.6:{closed}",),
        grafana=(f"127.0.0.7:{closed}",),
        alertmanagers=(alertmanager or f"127.0.0.1:{closed}",),
    )
    config = write_config(workdir, targets, extra_rules, evaluation_interval)
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    if evaluation_interval is not None:
        # Alerts evaluated before the notifier knows its Alertmanager are dropped and only sent again
        # after the resend delay (1 m by default): the fast test resends at its evaluation interval.
        command.append(f"--rules.alert.resend-delay={evaluation_interval}")
    with local_server("prometheus", command, workdir, port) as server:
        yield server
