"""Prometheus as code: the rendered scrape config, the alert rules and their promtool unit tests.

promtool and the prometheus server (Debian's `prometheus` package, 2.42) check what we ship: the
config of a GCP-like and a local-like stack, every rule file rendered for every stack, every unit test
rendered with dev's and with prod's thresholds; each alert's unit test must fail when its expression
is broken; a real server loads the config and rules.
"""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from pathlib import Path

import pytest
import yaml
from prometheus_server import get_json, write_config
from promql_names import TEXTFILE_METRICS, exposed_metrics, label_matchers, metric_names, unknown_references
from stack_rules import UNIT_TEST_STACKS, rule_texts, stack_alerts, unit_test_texts, write_rules_and_tests
from stack_rules import alert_rules as stack_alert_rules
from stack_rules import rule_documents as stack_rule_documents

from infra.render import prometheus_volume
from infra.render.prometheus_volume import (
    JOBS,
    RULES_DIR,
    AlertRules,
    ScrapeTargets,
    absolute_runbooks,
    render_monitoring_file,
    render_prometheus_config,
)
from infra.settings import STACKS, parse_settings
from infra.tools import mocks

GCP_TARGETS = ScrapeTargets.for_hosts(
    stack="dev",
    spark_driver="hydro-dev-dataproc-m",
    kafka_hosts=("10.20.0.5",),
    node_hosts=("10.20.0.5", "10.20.0.6", "10.20.0.8"),
    influxdb_host="10.20.0.6",
)
LOCAL_TARGETS = ScrapeTargets.for_hosts(
    stack="local",
    spark_driver="spark",
    kafka_hosts=("kafka",),
    node_hosts=("node-exporter",),
    influxdb_host="influxdb",
    prometheus_host="prometheus",
    alertmanager_host="alertmanager",
    grafana_host="grafana",
)
# The same layouts written out by hand, with the jobs' metrics ports (8000, 8001) and the exporters'
# catalog's (the brokers' metrics agent 9404, node_exporter 9100, Prometheus 9090, and the HTTP ports of
# InfluxDB 8086, Alertmanager 9093 and Grafana 3000, which serve their own /metrics).
EXPECTED_TARGETS = {
    "gcp": {
        "hydro-producer": ["hydro-dev-dataproc-m:8000"],
        "hydro-consumer": ["hydro-dev-dataproc-m:8001"],
        "kafka": ["10.20.0.5:9404"],
        "node-exporter": ["10.20.0.5:9100", "10.20.0.6:9100", "10.20.0.8:9100"],
        "prometheus": ["localhost:9090"],
        "influxdb": ["10.20.0.6:8086"],
        "alertmanager": ["localhost:9093"],
        "grafana": ["localhost:3000"],
    },
    "local": {
        "hydro-producer": ["spark:8000"],
        "hydro-consumer": ["spark:8001"],
        "kafka": ["kafka:9404"],
        "node-exporter": ["node-exporter:9100"],
        "prometheus": ["prometheus:9090"],
        "influxdb": ["influxdb:8086"],
        "alertmanager": ["alertmanager:9093"],
        "grafana": ["grafana:3000"],
    },
}
LAYOUTS = {"gcp": GCP_TARGETS, "local": LOCAL_TARGETS}


def rule_documents(stack: str = "dev") -> dict[str, dict]:
    """The rule files rendered for `stack` (file, group and alert names are the same on every stack)."""
    return stack_rule_documents(stack)


def alert_rules(stack: str = "dev") -> dict[str, dict]:
    """alert name -> rule, over every rule file rendered for `stack`."""
    return stack_alert_rules(stack)


ALERTS = sorted(alert_rules())
# The watchdog always fires (a promtool test and tests/monitoring/test_monitoring_alertmanager.py
# check it): no quiet case, no threshold to break, no severity that pages.
WATCHDOG = "HydroWatchdog"
CONDITION_ALERTS = [alert for alert in ALERTS if alert != WATCHDOG]


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# --- the scrape configuration -------------------------------------------------------------------

@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_rendered_config_scrapes_each_job_at_the_expected_addresses(layout):
    config = yaml.safe_load(render_prometheus_config(LAYOUTS[layout]))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert list(jobs) == list(EXPECTED_TARGETS[layout])
    for name, job in jobs.items():
        (static,) = job["static_configs"]
        assert static["targets"] == EXPECTED_TARGETS[layout][name], name
        assert static["labels"] == {"stack": LAYOUTS[layout].stack}
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    assert config["global"]["external_labels"] == {"stack": LAYOUTS[layout].stack}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_promtool_accepts_the_rendered_config_and_finds_every_rule_file(layout, tmp_path, promtool):
    result = run(promtool, "check", "config", str(write_config(tmp_path, LAYOUTS[layout])))
    assert result.returncode == 0, result.stdout + result.stderr
    rule_file_count = len(rule_texts("dev"))
    assert f"SUCCESS: {rule_file_count} rule files found" in result.stdout + result.stderr


def test_promtool_rejects_a_config_whose_rules_do_not_parse(tmp_path, promtool):
    """Control: `check config` really reads the copied rules, so a broken one fails it."""
    path = write_config(tmp_path, GCP_TARGETS)
    (tmp_path / "rules" / "targets.yml").write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n"
                                                   "        expr: up ==\n")
    result = run(promtool, "check", "config", str(path))
    assert result.returncode != 0


@pytest.mark.parametrize("bad, problem", [
    ({"producer": ("spark",)}, "not a host:port address"),
    ({"consumer": ("spark:0",)}, "not a host:port address"),
    ({"consumer": ("spark:70000",)}, "not a host:port address"),
    ({"node_exporter": ()}, "non-empty tuple"),
    ({"kafka": "broker:9404"}, "non-empty tuple"),
    ({"node_exporter": ("a:9100", "a:9100")}, "duplicate"),
    ({"influxdb": ("tsdb",)}, "influxdb: 'tsdb' is not a host:port address"),
    ({"grafana": ()}, "grafana: a non-empty tuple"),
    ({"stack": "Dev Stack"}, "stack 'Dev Stack'"),
])
def test_scrape_targets_refuse_bad_values_naming_them(bad, problem):
    good = {"stack": "dev", "producer": ("d:8000",), "consumer": ("d:8001",), "kafka": ("b:9404",),
            "node_exporter": ("b:9100",), "influxdb": ("t:8086",)}
    with pytest.raises(ValueError, match=re.escape(problem)):
        ScrapeTargets(**{**good, **bad})


def test_config_files_are_the_config_and_every_rule_file():
    alerts = stack_alerts("dev")
    files = prometheus_volume.prometheus_config_files(GCP_TARGETS, alerts)
    sources = sorted([*RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.yml.j2")])
    rendered = sorted(f"rules/{path.name.removesuffix('.j2')}" for path in sources)
    assert sorted(files) == ["prometheus.yml", *rendered]
    assert {"rules/pipeline.yml", "rules/freshness.yml"} <= set(files)
    # A plain rule file ships as written, but for its runbook's address.
    assert files["rules/targets.yml"] == (RULES_DIR / "targets.yml").read_text().replace(
        "runbook_url: docs/operations.md#", f"runbook_url: {alerts.runbook_base_url}docs/operations.md#")


# --- the rules ----------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_promtool_accepts_every_rule_file_and_counts_every_alert(stack, promtool, tmp_path):
    paths = []
    for name, text in rule_texts(stack).items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    result = run(promtool, "check", "rules", *map(str, paths))
    assert result.returncode == 0, result.stdout + result.stderr
    counts = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", result.stdout + result.stderr)]
    assert len(counts) == len(paths)
    assert sum(counts) == len(ALERTS)


@pytest.mark.parametrize("stack", STACKS)
def test_rendering_keeps_prometheus_templates_and_leaves_no_jinja(stack):
    texts = rule_texts(stack)
    assert "{{ $labels.query }}" in texts["pipeline.yml"]
    assert "{{ $value | humanizeDuration }}" in texts["pipeline.yml"]
    for name, text in texts.items():
        assert "{%" not in text and "{#" not in text, f"{stack} {name}"
        assert not re.search(r"alert\.[a-z]", text), f"{stack} {name}: a Jinja value left unrendered"


def test_a_bare_prometheus_template_in_a_rule_template_refuses_to_render(tmp_path):
    template = tmp_path / "bare.yml.j2"
    template.write_text('summary: "{{ $labels.instance }} above {{ alert.batch_seconds }}s"\n')
    with pytest.raises(ValueError, match=r"bare\.yml\.j2: TemplateSyntaxError"):
        render_monitoring_file(template, stack_alerts("dev"))
    raw = "{% raw %}{{ $labels.instance }}{% endraw %}"
    template.write_text(f'summary: "{raw} above {{{{ alert.batch_seconds }}}}s"')
    rendered = render_monitoring_file(template, stack_alerts("dev"))
    assert rendered == 'summary: "{{ $labels.instance }} above 30s"'


@pytest.mark.parametrize("written", ["https://example.com/docs/operations.md#x", "operations.md#x",
                                     "docs/operations.md", "'docs/operations.md#x'"])
def test_a_runbook_url_that_is_not_a_repository_path_refuses_to_render(written):
    with pytest.raises(ValueError, match="runbook_url"):
        absolute_runbooks(f"  runbook_url: {written}\n", "https://example.com/repo/")


@pytest.mark.parametrize("bad, problem", [
    ({"runbook_base_url": "ftp://example.com/"}, "runbook_base_url"),
    ({"runbook_base_url": "https://example.com/repo"}, "ending in /"),
    ({"offsets_behind": 0}, "offsets_behind"),
    ({"freshness_target": 1.0}, "freshness_target"),
])
def test_alert_rules_refuse_bad_values_naming_them(bad, problem):
    good = {"runbook_base_url": "https://example.com/", "batch_seconds": 30, "watermark_lag_seconds": 690,
            "offsets_behind": 5000, "freshness_objective_seconds": 60, "freshness_target": 0.99}
    AlertRules(**good)
    with pytest.raises(ValueError, match=re.escape(problem)):
        AlertRules(**{**good, **bad})


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_runbook_url_is_absolute_and_names_a_runbook_heading(stack):
    operations = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    # GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens.
    anchors = {re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
               for line in operations.splitlines() if line.startswith("#")}
    base = parse_settings(stack, mocks.stack_config(stack)).alerting.runbook_base_url
    for name, rule in alert_rules(stack).items():
        url = urllib.parse.urlsplit(rule["annotations"]["runbook_url"])
        assert url.scheme in ("http", "https") and url.hostname, (name, url)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{base}docs/operations.md", name
        assert url.fragment == name.lower() and url.fragment in anchors, name


def test_the_issue_s_alerts_are_all_there():
    assert set(ALERTS) >= {
        "HydroTargetDown", "HydroNoReadingsWritten", "HydroBatchSlowerThanTrigger",
        "HydroWatermarkLagGrowing", "HydroKafkaOffsetsBehindGrowing", "HydroQuarantineShareHigh",
        "HydroSinkErrors", "HydroDataDiskNearlyFull", "HydroDataDiskFull", "HydroInfluxDBBackupStale",
    }


@pytest.mark.parametrize("alert", CONDITION_ALERTS)
def test_alert_has_for_severity_summary_and_description(alert):
    rule = alert_rules()[alert]
    assert re.fullmatch(r"[1-9][0-9]*[smh]", rule.get("for", "")), f"{alert}: needs a `for:` duration"
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert len(rule["annotations"]["summary"]) > 15
    assert len(rule["annotations"]["description"]) > 80, f"{alert}: tell on-call what to look at"


def test_data_disk_alerts_watch_only_the_data_disk_mount():
    for name in ("HydroDataDiskNearlyFull", "HydroDataDiskFull"):
        matchers = label_matchers(alert_rules()[name]["expr"])
        assert {(label, op, value) for _, label, op, value in matchers} == {
            ("mountpoint", "=~", "/mnt/disks/data.*")}


INVENTORIES = Path(__file__).resolve().parents[1] / "inventories"


def test_the_backup_alert_spares_exactly_the_stacks_that_back_nothing_up():
    # From the reviewed plans: a stack backs up when its tsdb VM ships the backup script.
    without_backups = {stack for stack in STACKS
                       if "influxdb-backup.sh" not in (INVENTORIES / f"{stack}.yaml").read_text()}
    expr = alert_rules()["HydroInfluxDBBackupStale"]["expr"]
    spared = {value for metric, label, op, value in label_matchers(expr) if label == "stack" and op == "!="}
    assert spared == without_backups
    assert without_backups != set(STACKS), "no stack backs up: the alert would watch nothing"


def _seconds(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"s": 1, "m": 60, "h": 3600}[unit]


def _threshold(expr: str, pattern: str) -> float:
    match = re.search(pattern, expr)
    assert match is not None, (pattern, expr)
    return float(match.group(1))


# Worked out by hand from the stack files: the offsets one partition receives in the freshness objective
# (trigger 30 s + 30 s): local, dev and staging 500/s over 6 partitions, prod 2,000/s over 12.
OFFSETS_BEHIND = {"local": 5000, "dev": 5000, "staging": 5000, "prod": 10000}


@pytest.mark.parametrize("stack", STACKS)
def test_thresholds_follow_the_stack_s_trigger_watermark_rate_and_partitions(stack):
    settings = parse_settings(stack, mocks.stack_config(stack))
    assert (settings.jobs.rate, settings.kafka.partitions, settings.jobs.trigger) == (
        {"prod": (2000, 12, "30s")}.get(stack, (500, 6, "30s"))), "OFFSETS_BEHIND was worked out for others"
    trigger, watermark = _seconds(settings.jobs.trigger), _seconds(settings.jobs.watermark)
    rules = alert_rules(stack)
    assert _threshold(rules["HydroBatchSlowerThanTrigger"]["expr"], r"> (\d+)\s*$") == trigger
    assert f"above the {trigger}s trigger" in rules["HydroBatchSlowerThanTrigger"]["annotations"]["summary"]
    # A healthy consumer's lag is the watermark delay plus up to a trigger and a batch: the alert allows
    # the freshness objective (trigger + 30 s) on top.
    lag = _threshold(rules["HydroWatermarkLagGrowing"]["expr"],
                     r"hydro_consumer_watermark_lag_seconds > (\d+)")
    assert lag == watermark + trigger + (trigger + 30)
    offsets = _threshold(rules["HydroKafkaOffsetsBehindGrowing"]["expr"],
                         r"hydro_consumer_kafka_offsets_behind_latest > (\d+)")
    assert offsets == OFFSETS_BEHIND[stack]


@pytest.mark.parametrize("stack", STACKS)
def test_freshness_alerts_are_the_workbook_s_burn_rates_over_the_objective(stack):
    rules = alert_rules(stack)
    windows = {name: [(window, float(factor), float(budget)) for window, factor, budget in re.findall(
        r"\[(\w+)\]\)\)\) > ([\d.]+) \* ([\d.]+)", rules[name]["expr"])]
        for name in ("HydroFreshnessFastBurn", "HydroFreshnessSlowBurn")}
    assert windows["HydroFreshnessFastBurn"] == [("1h", 14.4, 0.01), ("5m", 14.4, 0.01)]
    assert windows["HydroFreshnessSlowBurn"] == [("6h", 6.0, 0.01), ("30m", 6.0, 0.01), ("3d", 1.0, 0.01),
                                                 ("6h", 1.0, 0.01)]
    assert rules["HydroFreshnessFastBurn"]["labels"]["severity"] == "critical"
    assert rules["HydroFreshnessSlowBurn"]["labels"]["severity"] == "warning"
    objective = _seconds(parse_settings(stack, mocks.stack_config(stack)).jobs.trigger) + 30
    assert f"later than {objective}s" in rules["HydroFreshnessFastBurn"]["annotations"]["summary"]


# --- names against the jobs ---------------------------------------------------------------------

def test_name_parser_finds_metrics_and_ignores_functions_labels_and_keywords():
    expr = ('sum by (stack, query) (rate(a_total{status="x", job=~"j"}[5m])) / on(stack) b > 0.5 '
            'and deriv(c[10m]) > 1e3 or absent(d{measurement="m"}) unless e offset 5m')
    assert metric_names(expr) == {"a_total", "b", "c", "d", "e"}
    assert label_matchers(expr) == [("a_total", "status", "=", "x"), ("a_total", "job", "=~", "j"),
                                    ("d", "measurement", "=", "m")]


def test_name_check_reports_a_misspelt_metric_label_and_value():
    assert unknown_references("rate(hydro_consumer_record_total[5m]) > 0")
    assert unknown_references('hydro_consumer_records_total{state="valid"}')
    assert unknown_references('hydro_consumer_records_total{status="invalid"}')
    assert unknown_references('hydro_consumer_points_written_total{measurement="readings"}')
    assert not unknown_references('hydro_consumer_records_total{status="valid", job="x"}')


def test_the_jobs_expose_every_metric_the_design_names():
    from hydrostream_jobs import contract

    exposed = exposed_metrics()
    for name in contract.METRIC_NAMES:
        family = name.removesuffix("_total")
        assert name in exposed or f"{family}_count" in exposed, name


@pytest.mark.parametrize("alert", ALERTS)
def test_alert_refers_only_to_metrics_labels_and_values_that_exist(alert):
    rule = alert_rules()[alert]
    assert unknown_references(rule["expr"]) == []
    # Metrics the annotations send on-call to must exist as well.
    mentioned = set(re.findall(r"\bhydro_[a-z_]+", rule["annotations"]["description"]))
    known = set(exposed_metrics()) | TEXTFILE_METRICS
    assert mentioned <= known, mentioned - known


# --- promtool unit tests ------------------------------------------------------------------------

def unit_test_expectations(stack: str) -> dict[str, list[list]]:
    """alert name -> the exp_alerts lists of every alert_rule_test that names it (rendered for `stack`)."""
    found: dict[str, list[list]] = {}
    for text in unit_test_texts(stack).values():
        for case in yaml.safe_load(text)["tests"]:
            for check in case.get("alert_rule_test", []):
                found.setdefault(check["alertname"], []).append(check.get("exp_alerts") or [])
    return found


def promtool_test(promtool: str, tests: Path) -> subprocess.CompletedProcess:
    return run(promtool, "test", "rules", *sorted(p.name for p in tests.glob("*.yml")), cwd=tests)


@pytest.mark.parametrize("stack", UNIT_TEST_STACKS)
def test_promtool_unit_tests_pass(stack, promtool, tmp_path):
    tests = write_rules_and_tests(tmp_path, stack)
    result = promtool_test(promtool, tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(unit_test_texts(stack))


@pytest.mark.parametrize("stack", UNIT_TEST_STACKS)
@pytest.mark.parametrize("alert", CONDITION_ALERTS)
def test_every_alert_has_a_firing_and_a_quiet_unit_test(alert, stack):
    expectations = unit_test_expectations(stack).get(alert, [])
    assert any(expected for expected in expectations), f"{alert}: no unit test makes it fire"
    assert any(not expected for expected in expectations), f"{alert}: no unit test expects it silent"


_COMPARISON = re.compile(r"\s(==|!=|>=|<=|>|<)\s")
_FLIPPED = {"==": "!=", "!=": "==", ">": "<=", "<=": ">", "<": ">=", ">=": "<"}


def flip_first_comparison(expr: str) -> str:
    match = _COMPARISON.search(expr)
    assert match is not None, f"no comparison to flip in {expr!r}"
    return f"{expr[:match.start(1)]}{_FLIPPED[match.group(1)]}{expr[match.end(1):]}"


MUTATIONS = {
    "never-fires": lambda expr: "vector(1) == 0",
    "flipped": flip_first_comparison,
}


def copy_with(tmp_path: Path, alert: str | None, mutate, stack: str) -> Path:
    """rules/ and tests/ rendered for `stack` side by side; `alert`'s expression becomes `mutate(expr)`."""
    rules = {}
    for name, document in rule_documents(stack).items():
        for group in document["groups"]:
            for rule in group["rules"]:
                if rule["alert"] == alert:
                    rule["expr"] = mutate(rule["expr"])
        rules[name] = yaml.safe_dump(document, sort_keys=False, width=1000)
    return write_rules_and_tests(tmp_path, stack, rules)


def test_flip_inverts_the_first_comparison_only():
    assert flip_first_comparison("up == 0") == "up != 0"
    assert flip_first_comparison("a > 1200\nand deriv(a[5m]) > 0") == "a <= 1200\nand deriv(a[5m]) > 0"
    assert flip_first_comparison('x{m=~"a"} / y < 0.05') == 'x{m=~"a"} / y >= 0.05'


@pytest.mark.parametrize("stack", UNIT_TEST_STACKS)
def test_unmutated_copy_passes(stack, tmp_path, promtool):
    """Control for the mutation tests: copying and re-serializing the rules changes nothing."""
    result = promtool_test(promtool, copy_with(tmp_path, None, None, stack))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stack", UNIT_TEST_STACKS)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
@pytest.mark.parametrize("alert", CONDITION_ALERTS)
def test_broken_expression_fails_its_unit_test(alert, mutation, stack, tmp_path, promtool):
    result = promtool_test(promtool, copy_with(tmp_path, alert, MUTATIONS[mutation], stack))
    assert result.returncode != 0, f"{alert} with a {mutation} expression still passes its unit tests"
    failures = set(re.findall(r"alertname: (\w+),", result.stdout + result.stderr))
    assert failures == {alert}, result.stdout


# --- a real Prometheus 2.42 with the rendered config --------------------------------------------

def test_real_prometheus_loads_every_rule_group_and_evaluates_every_rule(running_prometheus):
    expected_groups = {group["name"]: sorted(rule["alert"] for rule in group["rules"])
                       for document in rule_documents().values() for group in document["groups"]}

    def evaluated_groups():
        groups = get_json(f"{running_prometheus.base}/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        # Rules report health "unknown" until their group's first evaluation.
        return groups if rules and all(rule["health"] != "unknown" for rule in rules) else None

    groups = running_prometheus.wait_for(evaluated_groups, 60, "the first rule evaluation")
    loaded = {group["name"]: sorted(rule["name"] for rule in group["rules"]) for group in groups}
    assert loaded == expected_groups
    unhealthy = {rule["name"]: rule.get("lastError") for group in groups for rule in group["rules"]
                 if rule["health"] != "ok"}
    assert unhealthy == {}


def test_real_prometheus_has_every_job_and_scrapes_itself(running_prometheus):
    def self_scraped():
        active = get_json(f"{running_prometheus.base}/api/v1/targets")["activeTargets"]
        own = [t for t in active if t["labels"]["job"] == "prometheus"]
        return active if own and own[0]["health"] == "up" else None

    active = running_prometheus.wait_for(self_scraped, 60, "prometheus to scrape itself")
    assert sorted({t["labels"]["job"] for t in active}) == sorted(JOBS)
    assert {t["labels"]["stack"] for t in active} == {"verify"}
    by_job = {t["labels"]["job"]: t for t in active}
    assert by_job["prometheus"]["scrapeUrl"] == f"{running_prometheus.base}/metrics"
