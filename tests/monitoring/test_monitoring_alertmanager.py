"""Alertmanager as code: the rendered config of every stack, its routes, and alerts delivered for real.

amtool (the catalog's Alertmanager version, built by alertmanager_build.py) checks each stack's
rendered config and resolves routes against receivers written down here by hand; a route that
drops critical alerts must make those cases fail. Then a real Prometheus evaluates the rules, sends
what fires to a real Alertmanager, which posts to a webhook this test runs (its URL read from a
file, as on the VMs): the watchdog reaches the heartbeat receiver, a critical alert the team, and a
dead target holds back the alerts that depend on it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from alertmanager_server import AlertmanagerServer, Webhook, alertmanager_server, webhook_server
from local_server import wait_until
from prometheus_server import PrometheusServer, prometheus_server
from stack_rules import alert_rules as stack_alert_rules

from infra import catalog
from infra.render import alertmanager_config
from infra.render.alertmanager_config import HEARTBEAT, PAGER, TEAM, render_alertmanager_config
from infra.settings import STACKS, AlertingSettings, parse_settings
from infra.tools import mocks

ROOT = Path(__file__).resolve().parents[2]

OPERATIONS = ROOT / "docs" / "operations.md"


def stack_alerting(stack: str) -> AlertingSettings:
    return parse_settings(stack, mocks.stack_config(stack)).alerting


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module", params=STACKS)
def rendered(request, tmp_path_factory) -> tuple[str, Path]:
    stack = request.param
    path = tmp_path_factory.mktemp(f"am-{stack}") / "alertmanager.yml"
    path.write_text(render_alertmanager_config(stack, stack_alerting(stack)))
    return stack, path


def test_amtool_accepts_every_stack_s_rendered_config(rendered, amtool):
    stack, path = rendered
    result = run(amtool, "check-config", str(path))
    assert result.returncode == 0, f"{stack}: {result.stdout}{result.stderr}"
    assert re.search(r"- 3 inhibit rules", result.stdout), result.stdout


def test_receiver_secrets_appear_as_file_paths_only(rendered):
    stack, path = rendered
    config = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    pagers = receivers.get(PAGER, {}).get("pagerduty_configs", [])
    assert all(set(p) & {"routing_key", "service_key"} == set() for p in pagers)
    assert [p["routing_key_file"] for p in pagers] == (
        [f"{catalog.SECRETS_DIR}/{catalog.PAGERDUTY_ROUTING_KEY}"] if stack == "prod" else [])
    for email in receivers[TEAM].get("email_configs", []):
        assert "auth_password" not in email
        assert email["auth_password_file"] == f"{catalog.SECRETS_DIR}/{catalog.SMTP_PASSWORD}"
    # The webhook's URL (a dead man's switch's carries a token) is a secret file too, for the team and
    # the heartbeat alike; staging and prod have one.
    hooks = [hook for name in (TEAM, HEARTBEAT) for hook in receivers[name].get("webhook_configs", [])]
    assert all("url" not in hook for hook in hooks)
    assert [hook["url_file"] for hook in hooks] == (
        [f"{catalog.SECRETS_DIR}/{catalog.WEBHOOK_URL}"] * 2 if stack in ("staging", "prod") else [])


# Written down by hand from the issue: critical -> the pager (where there is one) and the team,
# warning -> the team (e-mail, webhook), the watchdog -> the heartbeat only.
ROUTES = {
    "prod": {"critical": "pager,team", "warning": "team", "watchdog": "heartbeat", "unlabelled": "team",
             "backup": "team"},
    "staging": {"critical": "team", "warning": "team", "watchdog": "heartbeat", "unlabelled": "team",
                "backup": "team"},
    "dev": {"critical": "team", "warning": "team", "watchdog": "heartbeat", "unlabelled": "team",
            "backup": "team"},
    "local": {"critical": "team", "warning": "team", "watchdog": "heartbeat", "unlabelled": "team",
              "backup": "team"},
}
CASES = {
    "critical": ("alertname=HydroTargetDown", "severity=critical", "stack=prod", "job=hydro-consumer"),
    "warning": ("alertname=HydroSinkErrors", "severity=warning", "stack=prod"),
    "watchdog": ("alertname=HydroWatchdog", "severity=none", "stack=prod"),
    "unlabelled": ("alertname=SomethingNew", "stack=prod"),
    # A stale backup is the team's to fix in working hours, never a page (its rule says warning).
    "backup": ("alertname=HydroInfluxDBBackupStale", "severity=warning", "stack=prod"),
}


def routes_test(amtool: str, path: Path, expected: str,
                labels: tuple[str, ...]) -> subprocess.CompletedProcess:
    return run(amtool, "config", "routes", "test", f"--config.file={path}",
               f"--verify.receivers={expected}", *labels)


@pytest.mark.parametrize("case", sorted(CASES))
def test_routes_deliver_each_severity_to_its_receivers(rendered, case, amtool):
    stack, path = rendered
    result = routes_test(amtool, path, ROUTES[stack][case], CASES[case])
    assert result.returncode == 0, f"{stack} {case}: {result.stdout}{result.stderr}"
    assert result.stdout.strip().splitlines() == [ROUTES[stack][case]]


def with_critical_dropped(path: Path, tmp_path: Path) -> Path:
    """The config with a first route that sends critical alerts to a receiver with no integrations."""
    config = yaml.safe_load(path.read_text())
    config["route"]["routes"].insert(0, {"receiver": "dropped", "matchers": ['severity="critical"']})
    config["receivers"].append({"name": "dropped"})
    mutated = tmp_path / "alertmanager.yml"
    mutated.write_text(yaml.safe_dump(config, sort_keys=False))
    return mutated


def test_a_route_that_drops_critical_alerts_fails_the_routes_test(tmp_path, amtool):
    path = tmp_path / "prod.yml"
    path.write_text(render_alertmanager_config("prod", stack_alerting("prod")))
    mutated = with_critical_dropped(path, tmp_path)
    assert run(amtool, "check-config", str(mutated)).returncode == 0, "the mutant must be a valid config"
    result = routes_test(amtool, mutated, ROUTES["prod"]["critical"], CASES["critical"])
    assert result.returncode != 0, result.stdout
    assert result.stdout.strip().splitlines()[0] == "dropped"


def test_stacks_with_receivers_are_the_ones_configured():
    assert stack_alerting("prod").pagerduty and stack_alerting("prod").email
    assert set(stack_alerting("prod").secrets) == set(catalog.RECEIVER_SECRETS)
    assert stack_alerting("local") == AlertingSettings()


def alert_rules() -> dict[str, dict]:
    return stack_alert_rules("dev")


def test_every_alert_has_a_runbook_section_in_the_operations_guide():
    headings = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
                for line in OPERATIONS.read_text().splitlines() if line.startswith("#")}
    for name, rule in alert_rules().items():
        assert rule["annotations"]["runbook_url"].endswith(f"/docs/operations.md#{name.lower()}"), name
        assert name.lower() in headings, f"docs/operations.md has no section for {name}"


def test_the_routes_name_alerts_that_exist():
    names = set(alert_rules())
    assert {alertmanager_config.WATCHDOG, alertmanager_config.TARGET_DOWN,
            alertmanager_config.NO_READINGS, alertmanager_config.SINK_ERRORS,
            *alertmanager_config.INFLUXDB_FAILING} <= names
    watchdog = alert_rules()[alertmanager_config.WATCHDOG]
    assert watchdog["expr"].strip() == "vector(1)" and "for" not in watchdog


# --- end to end: Prometheus -> Alertmanager -> a webhook ---------------------------------------

E2E_CRITICAL = "HydroEndToEndCritical"
E2E_RULES = f"""groups:
  - name: end-to-end
    rules:
      - alert: {E2E_CRITICAL}
        expr: vector(1)
        labels:
          severity: critical
        annotations:
          summary: fires at once, for the delivery test
"""


# The delivery test's timings: seconds instead of minutes, on the same template and routes. What it checks
# does not depend on them (which receiver gets what, what is held back), only how long it waits.
FAST = alertmanager_config.Timing(group_wait="1s", group_interval="2s", repeat_interval="1m",
                                  pager_repeat_interval="1m", heartbeat_group_interval="2s",
                                  heartbeat_interval="1m")
FAST_EVALUATION = "2s"


def test_every_stack_runs_the_production_timings(rendered):
    stack, path = rendered
    route = yaml.safe_load(path.read_text())["route"]
    # Written down by hand: a new group waits 30 s, updates every 5 min, repeats every 4 h; the
    # watchdog goes out at once and repeats every 5 min; the pager repeats every hour.
    timings = ("group_wait", "group_interval", "repeat_interval")
    assert [route[key] for key in timings] == ["30s", "5m", "4h"]
    watchdog, *others = route["routes"]
    assert [watchdog[key] for key in timings] == ["0s", "1m", "5m"]
    assert [r.get("repeat_interval") for r in others if r["receiver"] == PAGER] == (
        ["1h"] if stack == "prod" else [])


def test_fast_timings_change_only_the_timings():
    def without_timings(config: dict) -> dict:
        config = dict(config, route=dict(config["route"]))
        strip = ("group_wait", "group_interval", "repeat_interval")
        config["route"] = {k: v for k, v in config["route"].items() if k not in strip}
        config["route"]["routes"] = [{k: v for k, v in r.items() if k not in strip}
                                     for r in config["route"]["routes"]]
        return config
    alerting = stack_alerting("prod")
    slow = yaml.safe_load(render_alertmanager_config("prod", alerting))
    fast = yaml.safe_load(render_alertmanager_config("prod", alerting, FAST))
    assert fast["route"]["group_wait"] == "1s" and slow != fast
    assert without_timings(slow) == without_timings(fast)


def test_a_timing_that_is_no_duration_is_refused():
    with pytest.raises(ValueError, match=r"group_wait='soon'"):
        alertmanager_config.Timing(group_wait="soon")


@pytest.fixture(scope="module")
def delivery(tmp_path_factory, prometheus_binary, alertmanager_binary) -> Iterator[
        tuple[Webhook, AlertmanagerServer, PrometheusServer]]:
    """A webhook, an Alertmanager with the template rendered for it (no pager: dev's shape), and a
    Prometheus with the rendered config, the shipped rules and one rule that fires at once."""
    with webhook_server() as hook:
        am_dir = tmp_path_factory.mktemp("alertmanager")
        # The URL reaches Alertmanager as the monitoring VM delivers it: a secret file (`url_file`), here
        # at a test path instead of the container's.
        url_file = am_dir / catalog.WEBHOOK_URL
        url_file.write_text(hook.url + "\n")
        config = render_alertmanager_config("verify", AlertingSettings(webhook=True), FAST)
        secret = alertmanager_config.secret_path(catalog.WEBHOOK_URL)
        assert config.count(f'"{secret}"') == 2 and hook.url not in config
        config = config.replace(f'"{secret}"', f'"{url_file}"')
        with alertmanager_server(alertmanager_binary, am_dir, config) as am, \
                prometheus_server(prometheus_binary, tmp_path_factory.mktemp("prometheus-e2e"),
                                  alertmanager=am.address, extra_rules={"end-to-end.yml": E2E_RULES},
                                  evaluation_interval=FAST_EVALUATION) as prom:
            yield hook, am, prom


def test_the_watchdog_reaches_the_heartbeat_receiver(delivery):
    hook, am, prom = delivery
    delivered = wait_until(
        lambda: [a for a in hook.alerts(HEARTBEAT) if a["alertname"] == alertmanager_config.WATCHDOG],
        90, "the watchdog at the heartbeat webhook", am, prom)
    # Prometheus's external label: the receiving end tells stacks apart.
    assert delivered[0]["stack"] == "verify"
    assert not any(a["alertname"] == alertmanager_config.WATCHDOG for a in hook.alerts(TEAM))


def test_a_critical_alert_evaluated_by_prometheus_reaches_the_team(delivery):
    hook, am, prom = delivery
    delivered = wait_until(
        lambda: [a for a in hook.alerts(TEAM) if a["alertname"] == E2E_CRITICAL],
        120, f"{E2E_CRITICAL} at the team webhook", am, prom)
    assert delivered[0]["severity"] == "critical" and delivered[0]["stack"] == "verify"


def _alert(name: str, severity: str, **labels: str) -> dict:
    return {"labels": {"alertname": name, "severity": severity, "stack": "inhibit", **labels},
            "annotations": {"summary": name}}


def test_a_dead_target_holds_back_the_alerts_that_depend_on_it(delivery):
    hook, am, _ = delivery
    consumer = {"job": "hydro-consumer", "instance": "driver-a:8001"}
    am.post_alerts([
        _alert("HydroTargetDown", "critical", **consumer),
        _alert("HydroSinkErrors", "warning", **consumer),
        _alert("HydroNoReadingsWritten", "critical", measurement="sensor_readings"),
        # Another instance: its target is up, so its alert is not held back.
        _alert("HydroSinkErrors", "warning", job="hydro-consumer", instance="driver-b:8001"),
    ])

    def states() -> dict[tuple[str, str], list[str]]:
        return {(a["labels"]["alertname"], a["labels"].get("instance", "")): a["status"]["inhibitedBy"]
                for a in am.alerts() if a["labels"]["stack"] == "inhibit"}
    # The API lists a posted alert at once, but Alertmanager's inhibitor learns of the source alert
    # (HydroTargetDown) from its own subscription to the alerts, a moment later: until then nothing reads
    # as held back. Wait for the inhibitor to have it, then check which alerts it holds.
    held = wait_until(lambda: (s := states()) and len(s) == 4 and any(s.values()) and s, 30,
                      "the posted alerts, the inhibitor aware of their source", am)
    assert {key: bool(by) for key, by in held.items()} == {
        ("HydroTargetDown", "driver-a:8001"): False,
        ("HydroSinkErrors", "driver-a:8001"): True,
        ("HydroNoReadingsWritten", ""): True,
        ("HydroSinkErrors", "driver-b:8001"): False,
    }

    def delivered() -> set[tuple[str, str]]:
        return {(a["alertname"], a.get("instance", "")) for a in hook.alerts(TEAM) if a["stack"] == "inhibit"}
    wait_until(lambda: {("HydroTargetDown", "driver-a:8001"), ("HydroSinkErrors", "driver-b:8001")}
               <= delivered(), 120, "the root alert and the unrelated one at the team webhook", am)
    time.sleep(3)  # the held-back alerts' groups flush at the same time: give a straggler its chance
    assert delivered() == {("HydroTargetDown", "driver-a:8001"), ("HydroSinkErrors", "driver-b:8001")}


@pytest.mark.parametrize("cause", ["HydroInfluxDBDown", "HydroInfluxDBWriteErrors"])
def test_influxdb_failing_holds_back_the_consumer_s_write_alerts_of_its_stack(delivery, cause):
    hook, am, _ = delivery
    stack, other = f"inhibit-{cause.lower()}", f"inhibit-{cause.lower()}-other"
    am.post_alerts([
        _alert(cause, "critical", stack=stack, job="influxdb", instance="tsdb:8086"),
        _alert("HydroSinkErrors", "warning", stack=stack, job="hydro-consumer", instance="driver:8001"),
        _alert("HydroNoReadingsWritten", "critical", stack=stack, measurement="sensor_readings"),
        # Another stack's InfluxDB is fine: its consumer's alert is not held back.
        _alert("HydroSinkErrors", "warning", stack=other, job="hydro-consumer", instance="driver:8001"),
    ])

    def states() -> dict[tuple[str, str], bool]:
        return {(a["labels"]["alertname"], a["labels"]["stack"]): bool(a["status"]["inhibitedBy"])
                for a in am.alerts() if a["labels"]["stack"] in (stack, other)}
    # The API lists a posted alert at once, but Alertmanager's inhibitor learns of the source alert
    # (HydroTargetDown) from its own subscription to the alerts, a moment later: until then nothing reads
    # as held back. Wait for the inhibitor to have it, then check which alerts it holds.
    held = wait_until(lambda: (s := states()) and len(s) == 4 and any(s.values()) and s, 30,
                      "the posted alerts, the inhibitor aware of their source", am)
    assert held == {(cause, stack): False, ("HydroSinkErrors", stack): True,
                    ("HydroNoReadingsWritten", stack): True, ("HydroSinkErrors", other): False}

    def delivered() -> set[tuple[str, str]]:
        return {(a["alertname"], a["stack"]) for a in hook.alerts(TEAM) if a["stack"] in (stack, other)}
    expected = {(cause, stack), ("HydroSinkErrors", other)}
    wait_until(lambda: expected <= delivered(), 120, "the cause and the other stack's alert", am)
    time.sleep(3)  # the held-back alerts' groups flush at the same time: give a straggler its chance
    assert delivered() == expected
