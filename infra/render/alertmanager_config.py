"""Alertmanager configuration: the stack's receivers, routes by severity, inhibitions.

Pure: no Pulumi resources. Receiver secrets are named by their paths inside the container
(catalog.ALERTMANAGER's secret files), never by value:

    files = alertmanager_config_files("prod", receivers)   # {"alertmanager.yml": ...}

goes into the `alertmanager-config` volume (mounted at /etc/alertmanager). Critical alerts reach the
pager (PagerDuty) and the team (e-mail, webhook); warnings the team; the always-firing watchdog the
heartbeat receiver (the webhook).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from infra import catalog
from infra.paths import PROJECT_DIR
from infra.render import prometheus_volume
from infra.render.templating import render_file

TEMPLATE_DIR = PROJECT_DIR / "monitoring" / "alertmanager"
TEMPLATE = "alertmanager.yml.j2"
CONFIG_FILE = "alertmanager.yml"
CONFIG_MOUNT = next(v.container_path for v in catalog.ALERTMANAGER.volumes if v.name == "alertmanager-config")

# Receiver names: the routes tests (tests/monitoring) and docs/operations.md refer to them.
PAGER = "pager"
TEAM = "team"
HEARTBEAT = "heartbeat"

# Alert names the routes and inhibitions match (monitoring/prometheus/rules).
WATCHDOG = "HydroWatchdog"
TARGET_DOWN = "HydroTargetDown"
NO_READINGS = "HydroNoReadingsWritten"
SINK_ERRORS = "HydroSinkErrors"
INFLUXDB_FAILING = ("HydroInfluxDBDown", "HydroInfluxDBWriteErrors")


@dataclass(frozen=True)
class Timing:
    """How long Alertmanager holds a new group, waits between a group's updates and before repeating.

    The defaults are every stack's; the delivery test shortens them so it runs in seconds, never
    minutes, on the same template."""

    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    pager_repeat_interval: str = "1h"
    heartbeat_group_interval: str = "1m"
    heartbeat_interval: str = "5m"   # the watchdog's repeat: how often the dead man's switch hears of us

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not re.fullmatch(r"[0-9]+(ms|s|m|h)", value):
                raise ValueError(f"alertmanager timing {name}={value!r}: a duration like 30s, 5m or 4h")


HEARTBEAT_INTERVAL = Timing().heartbeat_interval


class Receivers(Protocol):
    """Where alerts go (the stack's `alerting` settings have it); none set: Alertmanager's UI only."""

    email_to: str | None
    email_from: str | None
    smarthost: str | None
    smtp_username: str | None   # with one, the relay's password is the catalog's SMTP_PASSWORD secret
    webhook: bool               # its URL: the WEBHOOK_URL secret
    pagerduty: bool             # its routing key: the PAGERDUTY_ROUTING_KEY secret


def secret_path(secret: str) -> str:
    """Where Alertmanager reads a receiver secret inside its container."""
    return next(f.container_path for f in catalog.ALERTMANAGER.secret_files if f.secret == secret)


@dataclass(frozen=True)
class _Email:
    to: str
    sender: str
    smarthost: str
    username: str | None
    password_file: str


@dataclass(frozen=True)
class _Pager:
    name: str
    routing_key_file: str


def render_alertmanager_config(stack: str, alerting: Receivers, timing: Timing = Timing()) -> str:
    """alertmanager.yml for `stack`, with the receivers `alerting` configures."""
    email = None
    if alerting.email_to is not None:
        if alerting.email_from is None or alerting.smarthost is None:
            raise ValueError("alerting: e-mail needs email_from and smarthost (infra.settings checks this)")
        email = _Email(alerting.email_to, alerting.email_from, alerting.smarthost, alerting.smtp_username,
                       secret_path(catalog.SMTP_PASSWORD))
    pager = _Pager(PAGER, secret_path(catalog.PAGERDUTY_ROUTING_KEY)) if alerting.pagerduty else None
    return render_file(
        TEMPLATE_DIR / TEMPLATE,
        stack=stack, team=TEAM, heartbeat=HEARTBEAT, pager=pager, email=email,
        webhook_url_file=secret_path(catalog.WEBHOOK_URL) if alerting.webhook else None,
        watchdog=WATCHDOG, timing=timing,
        target_down=TARGET_DOWN, no_readings=NO_READINGS, consumer_job=prometheus_volume.JOB_CONSUMER,
        sink_errors=SINK_ERRORS, influxdb_failing=INFLUXDB_FAILING)


def alertmanager_config_files(stack: str, alerting: Receivers) -> dict[str, str]:
    """The whole alertmanager-config volume."""
    return {CONFIG_FILE: render_alertmanager_config(stack, alerting)}


def receiver_summary(alerting: Receivers) -> dict[str, list[str]]:
    """Receiver -> where it delivers, for the plan and the stack outputs (secrets named, never shown)."""
    webhook = f"webhook, URL in secret {catalog.WEBHOOK_URL}"
    team = ([f"email {alerting.email_to} via {alerting.smarthost}"] if alerting.email_to else []) + (
        [webhook] if alerting.webhook else [])
    summary = {
        TEAM: team or ["none: Alertmanager's UI only"],
        HEARTBEAT: [f"{webhook} every {HEARTBEAT_INTERVAL}"] if alerting.webhook
        else ["none: the watchdog shows in Alertmanager's UI only"],
    }
    if alerting.pagerduty:
        summary[PAGER] = [f"pagerduty, routing key in secret {catalog.PAGERDUTY_ROUTING_KEY}"]
    return summary
