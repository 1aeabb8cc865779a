"""Dashboards as code: the checked-in JSON is fresh, every query names only what the jobs write or
expose, data source uids match the provisioning, and both dashboards hold the panels the issue lists.

Queries are read back out of the JSON and parsed here (regexes over PromQL and Flux), so a name
typed by hand into monitoring/dashboards.py is caught as surely as a stale constant.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from itertools import product

import pytest
import yaml
from hydrostream_jobs import contract
from prometheus_server import get_json
from promql_names import TARGET_LABELS, unknown_references

from infra import catalog
from infra.render.grafana_config import (
    DASHBOARDS_DIR,
    DASHBOARDS_SUBDIR,
    PROVISIONING_DIR,
    GrafanaDataSources,
    grafana_provisioning_files,
    render_datasources,
)
from monitoring import dashboards

REGENERATE = ".venv/bin/python -m monitoring.dashboards"
NAMES = ("farm-overview", "pipeline-health")

# What the data contract says InfluxDB holds: sensor_readings with the seven values and three id tags;
# sensor_window_stats with <value>_mean/_min/_max, readings and devices, tagged farm and zone.
FIELDS = {
    contract.READINGS_MEASUREMENT: set(contract.VALUE_FIELDS),
    contract.WINDOW_STATS_MEASUREMENT: {f"{value}_{stat}" for value, stat in
                                        product(contract.VALUE_FIELDS, ("mean", "min", "max"))}
                                       | {"readings", "devices"},
}
TAGS = {
    contract.READINGS_MEASUREMENT: {"farm_id", "zone", "device_id"},
    contract.WINDOW_STATS_MEASUREMENT: {"farm_id", "zone"},
}
FLUX_COLUMNS = {"_measurement", "_field", "_value", "_time", "_start", "_stop"}

GCP_SOURCES = GrafanaDataSources(stack="dev", influxdb_host="10.20.0.6", prometheus_host="localhost",
                                 org="hydro", bucket="hydro")
LOCAL_SOURCES = GrafanaDataSources(stack="local", influxdb_host="influxdb", prometheus_host="prometheus",
                                   org="hydro", bucket="readings")


def load(name: str) -> dict:
    return json.loads((DASHBOARDS_DIR / f"{name}.json").read_text())


def panels(board: dict) -> list[dict]:
    return [panel for panel in board["panels"] if panel["type"] != "row"]


def queries(board: dict, kind: str) -> list[str]:
    """Every query text of one data source type: panel targets and template variables."""
    found = []
    for panel in panels(board):
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == kind:
                found.append(target["expr"] if kind == "prometheus" else target["query"])
    for variable in board.get("templating", {}).get("list", []):
        if variable["datasource"]["type"] == kind:
            found.append(variable["query"])
    return found


def flux_problems(query: str) -> list[str]:
    """Measurements, fields and tags in a Flux query that the contract does not define."""
    problems = []
    measurements = set(re.findall(r'r\._measurement == "([^"]*)"', query))
    if not measurements:
        problems.append("no _measurement filter")
    for measurement in measurements - set(FIELDS):
        problems.append(f"measurement {measurement!r} is not written by the consumer")
    known = measurements & set(FIELDS)
    for field in re.findall(r'r\._field == "([^"]*)"', query):
        if not any(field in FIELDS[m] for m in known):
            problems.append(f"field {field!r} is not in {sorted(known)}")
    tags = set(re.findall(r"\br\.([a-z_]+)\b", query)) | set(re.findall(r'tag: "([^"]*)"', query))
    tags |= {c for c in re.findall(r'"([a-z_]+)"', " ".join(re.findall(r"columns: \[[^\]]*\]", query)))}
    tags |= set(re.findall(r'"([a-z_]+)"', " ".join(re.findall(r"rowKey: \[[^\]]*\]", query))))
    for tag in tags - FLUX_COLUMNS:
        if not any(tag in TAGS[m] for m in known):
            problems.append(f"tag {tag!r} is not a tag of {sorted(known)}")
    return problems


# --- freshness ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_checked_in_json_equals_freshly_generated(name):
    path = DASHBOARDS_DIR / f"{name}.json"
    assert path.is_file(), f"{path} is missing: run `{REGENERATE}`"
    assert path.read_text() == dashboards.dashboard_json(name), (
        f"{path.name} is stale: run `{REGENERATE}` and commit the JSON")


def test_only_generated_dashboards_are_checked_in():
    assert sorted(p.stem for p in DASHBOARDS_DIR.glob("*.json")) == sorted(NAMES)
    assert sorted(dashboards.DASHBOARDS) == sorted(NAMES)


def test_regeneration_writes_the_files_it_would_check(tmp_path):
    written = dashboards.write_all(tmp_path)
    assert sorted(p.name for p in written) == [f"{name}.json" for name in sorted(NAMES)]
    for path in written:
        assert json.loads(path.read_text())["uid"] == load(path.stem)["uid"]


# --- names against the jobs ---------------------------------------------------------------------

def test_flux_check_reports_unknown_measurement_field_and_tag():
    good = ('from(bucket: v.defaultBucket) |> filter(fn: (r) => r._measurement == "sensor_readings" '
            'and r._field == "ph") |> filter(fn: (r) => r.device_id == "x")')
    assert flux_problems(good) == []
    assert flux_problems(good.replace('"ph"', '"ph_mean"'))
    assert flux_problems(good.replace("sensor_readings", "readings"))
    assert flux_problems(good.replace("sensor_readings", "sensor_window_stats").replace('"ph"', '"ph_mean"'))
    assert flux_problems('from(bucket: "b") |> range(start: -1h)')


@pytest.mark.parametrize("name", NAMES)
def test_flux_queries_name_only_measurements_fields_and_tags_the_consumer_writes(name):
    for query in queries(load(name), "influxdb"):
        assert flux_problems(query) == [], query


@pytest.mark.parametrize("name", NAMES)
def test_promql_queries_name_only_metrics_labels_and_values_that_exist(name):
    for expr in queries(load(name), "prometheus"):
        # Grafana's variable function label_values(metric, label) is not PromQL: check its parts.
        variable = re.fullmatch(r"label_values\((\w+), *(\w+)\)", expr)
        if variable:
            assert unknown_references(variable.group(1)) == [], expr
            assert variable.group(2) in TARGET_LABELS, expr
        else:
            assert unknown_references(expr) == [], expr


def test_prometheus_queries_filter_the_readings_topic_by_its_contract_name():
    exprs = " ".join(queries(load("pipeline-health"), "prometheus"))
    assert set(re.findall(r'topic="([^"]*)"', exprs)) == {contract.READINGS_TOPIC}


def test_every_metric_the_jobs_expose_is_on_the_pipeline_dashboard():
    exprs = " ".join(queries(load("pipeline-health"), "prometheus"))
    used = set(re.findall(r"\bhydro_[a-z_]+", exprs))
    used_families = {re.sub(r"_(bucket|sum|count)$", "", name) for name in used}
    expected = set(contract.METRIC_NAMES) | {contract.CONSUMER_LATE_ROWS_DROPPED_TOTAL}
    assert expected <= used | used_families, expected - used - used_families


# --- data sources -------------------------------------------------------------------------------

def provisioned(sources: GrafanaDataSources) -> dict[str, dict]:
    document = yaml.safe_load(render_datasources(sources))
    return {source["type"]: source for source in document["datasources"]}


def dashboard_datasources(board: dict) -> list[dict]:
    refs = []
    for panel in panels(board):
        refs.append(panel["datasource"])
        refs += [target["datasource"] for target in panel.get("targets", [])]
    refs += [variable["datasource"] for variable in board.get("templating", {}).get("list", [])]
    return refs


@pytest.mark.parametrize("name", NAMES)
def test_dashboard_datasource_uids_match_the_provisioning_file(name):
    by_type = provisioned(GCP_SOURCES)
    refs = dashboard_datasources(load(name))
    assert refs
    for ref in refs:
        assert ref["type"] in by_type, ref
        assert ref["uid"] == by_type[ref["type"]]["uid"], ref


@pytest.mark.parametrize("sources, influx_url, prometheus_url", [
    (GCP_SOURCES, "http://10.20.0.6:8086", "http://localhost:9090"),
    (LOCAL_SOURCES, "http://influxdb:8086", "http://prometheus:9090"),
])
def test_provisioned_datasources_per_target(sources, influx_url, prometheus_url):
    by_type = provisioned(sources)
    assert sorted(by_type) == ["influxdb", "prometheus"]
    influx, prom = by_type["influxdb"], by_type["prometheus"]
    assert (influx["uid"], prom["uid"]) == ("hydro-influxdb", "hydro-prometheus")
    assert (influx["url"], prom["url"]) == (influx_url, prometheus_url)
    assert influx["jsonData"] == {"version": "Flux", "organization": sources.org,
                                  "defaultBucket": sources.bucket, "timeInterval": "1m"}
    token_path = next(secret.container_path for secret in catalog.GRAFANA.secret_files
                      if secret.secret == catalog.INFLUXDB_READ_TOKEN)
    assert influx["secureJsonData"] == {"token": f"$__file{{{token_path}}}"}
    assert token_path == "/run/secrets/hydrostream/influxdb-read-token"
    assert prom["isDefault"] is True and not influx.get("isDefault")
    assert all(source["editable"] is False for source in by_type.values())


def test_no_secret_value_in_the_provisioning_files():
    text = "".join(grafana_provisioning_files(GCP_SOURCES).values())
    assert "token:" in text
    for line in text.splitlines():
        if re.match(r"\s*(token|password|basicAuthPassword):", line):
            assert "$__file{" in line, line


@pytest.mark.parametrize("bad", [
    {"influxdb_host": "http://influxdb"}, {"influxdb_host": "influxdb:8086"}, {"prometheus_host": ""},
    {"org": "Hydro Org"}, {"bucket": "a b"},
])
def test_datasources_refuse_bad_values(bad):
    good = {"stack": "dev", "influxdb_host": "h", "prometheus_host": "p", "org": "hydro", "bucket": "hydro"}
    with pytest.raises(ValueError, match=next(iter(bad))):
        GrafanaDataSources(**{**good, **bad})


def test_dashboard_provider_reads_the_folder_the_volume_holds_the_json_in():
    provider = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "dashboards.yaml").read_text())
    (entry,) = provider["providers"]
    volume = next(v.container_path for v in catalog.GRAFANA.volumes if v.name == "grafana-provisioning")
    assert entry["type"] == "file"
    assert entry["options"]["path"] == f"{volume}/{DASHBOARDS_SUBDIR}"
    files = grafana_provisioning_files(LOCAL_SOURCES)
    assert sorted(files) == sorted([
        "datasources/datasources.yaml", "dashboards/dashboards.yaml",
        *(f"{DASHBOARDS_SUBDIR}/{name}.json" for name in NAMES)])
    shipped = files[f"{DASHBOARDS_SUBDIR}/farm-overview.json"]
    assert shipped == (DASHBOARDS_DIR / "farm-overview.json").read_text()


# --- panels the issue lists ---------------------------------------------------------------------

FARM_READING_PANELS = {"pH": "ph", "EC": "ec_ms_cm", "Water temperature": "water_temp_c",
                       "Air temperature": "air_temp_c", "Relative humidity": "humidity_pct",
                       "Light (PPFD)": "light_ppfd", "Dissolved oxygen": "dissolved_oxygen_mg_l"}


def by_title(board: dict) -> dict[str, dict]:
    titled = {panel["title"]: panel for panel in panels(board)}
    assert len(titled) == len(panels(board)), "panel titles must be unique"
    return titled


def test_farm_overview_has_readings_with_bands_devices_and_latest_table():
    board = load("farm-overview")
    titled = by_title(board)
    assert set(titled) >= {*FARM_READING_PANELS, "Devices reporting", "Devices per zone", "Latest readings"}
    assert [v["name"] for v in board["templating"]["list"]] == ["farm", "zone"]
    for title, field in FARM_READING_PANELS.items():
        panel = titled[title]
        assert panel["type"] == "timeseries"
        (target,) = panel["targets"]
        assert f'r._field == "{field}_mean"' in target["query"]
        assert "${farm:regex}" in target["query"] and "${zone:regex}" in target["query"]
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults["custom"]["thresholdsStyle"]["mode"] in ("area", "line+area", "dashed+area")
        steps = defaults["thresholds"]["steps"]
        green = [i for i, step in enumerate(steps) if step["color"] == "green"]
        assert len(green) == 1 and green[0] > 0, f"{title}: one green target band above a base colour"
        low = steps[green[0]]["value"]
        high = steps[green[0] + 1]["value"] if green[0] + 1 < len(steps) else None
        lowest, highest = contract.VALUE_RANGES[field]
        assert lowest < low < (high if high is not None else highest) <= highest, title
    latest = titled["Latest readings"]
    assert latest["type"] == "table"
    query = latest["targets"][0]["query"]
    assert set(re.findall(r'r\._field == "([^"]*)"', query)) == set(contract.VALUE_FIELDS)
    assert "last()" in query and "pivot(" in query


def test_pipeline_health_has_the_issue_s_panels_on_the_right_metrics():
    titled = by_title(load("pipeline-health"))
    expected = {
        "Rows in / out per second": {"hydro_consumer_records_total", "hydro_consumer_points_written_total"},
        "Producer rate": {"hydro_producer_messages_sent_total"},
        "Batch duration": {"hydro_consumer_batch_duration_seconds_bucket"},
        "Watermark lag": {"hydro_consumer_watermark_lag_seconds"},
        "Kafka offsets behind latest": {"hydro_consumer_kafka_offsets_behind_latest"},
        "Quarantine rate": {"hydro_consumer_records_total"},
        "Sink errors": {"hydro_consumer_sink_errors_total"},
    }
    for title, metrics in expected.items():
        assert title in titled, title
        text = " ".join(target["expr"] for target in titled[title]["targets"])
        assert metrics <= set(re.findall(r"\bhydro_[a-z_]+", text)), title
    assert 'status="quarantined"' in " ".join(t["expr"] for t in titled["Quarantine rate"]["targets"])


@pytest.mark.parametrize("name", NAMES)
def test_layout_has_unique_ids_and_no_overlapping_panels(name):
    board = load(name)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    taken: dict[tuple[int, int], str] = {}
    for panel in board["panels"]:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for cell in product(range(pos["x"], pos["x"] + pos["w"]), range(pos["y"], pos["y"] + pos["h"])):
            assert cell not in taken, f"{panel['title']} overlaps {taken.get(cell)}"
            taken[cell] = panel["title"]



def test_every_dashboard_promql_query_runs_on_prometheus(running_prometheus):
    """Grafana's variables replaced by what it would send; Prometheus 2.42 parses and evaluates each."""
    exprs = [e for e in queries(load("pipeline-health"), "prometheus") if not e.startswith("label_values(")]
    assert len(exprs) >= 10
    for expr in exprs:
        concrete = expr.replace("$__rate_interval", "1m").replace("$stack", ".*")
        assert "$" not in concrete, concrete
        url = f"{running_prometheus.base}/api/v1/query?{urllib.parse.urlencode({'query': concrete})}"
        try:
            get_json(url)
        except urllib.error.HTTPError as error:
            pytest.fail(f"Prometheus rejects {concrete!r}: {error.read().decode()}")


# A small fleet in the real InfluxDB (tests/conftest.py): farm -> zone -> devices, one reading a minute.
FLEET = {"farm-a": {"bay 1": ("hp-1", "hp-2"), "bay,2": ("hp-3",)},
         "farm-b": {"bay 1": ("hp-4", "hp-5", "hp-6")}}


def write_fleet(influxdb, now_s: int) -> None:
    """Points shaped as the consumer writes them (tags escaped) over the last ten minutes; write token."""
    def tag(value: str) -> str:
        return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    lines = []
    for farm, zones in FLEET.items():
        for zone, devices in zones.items():
            for minute in range(10):
                t_ns = (now_s - 60 * (10 - minute)) * 10**9
                for device in devices:
                    values = ",".join(f"{name}={float(minute + 1)}" for name in contract.VALUE_FIELDS)
                    lines.append(f"{contract.READINGS_MEASUREMENT},device_id={tag(device)},farm_id={tag(farm)},"
                                 f"zone={tag(zone)} {values} {t_ns}")
                stats = ",".join(f"{name}_{stat}={float(minute)}" for name in contract.VALUE_FIELDS
                                 for stat in ("mean", "min", "max"))
                lines.append(f"{contract.WINDOW_STATS_MEASUREMENT},farm_id={tag(farm)},zone={tag(zone)} "
                             f"{stats},readings={len(devices)}i,devices={len(devices)}i {t_ns}")
    query = urllib.parse.urlencode({"org": influxdb.org, "bucket": influxdb.bucket, "precision": "ns"})
    request = urllib.request.Request(f"{influxdb.url}/api/v2/write?{query}", data="\n".join(lines).encode(),
                                     method="POST", headers={"Authorization": f"Token {influxdb.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204


def grafana_flux(query: str, bucket: str, farm: str = ".*", zone: str = ".*") -> str:
    """A dashboard query as Grafana sends it: its variables replaced (`.*` is "All")."""
    concrete = (query.replace("v.defaultBucket", json.dumps(bucket)).replace("v.timeRangeStart", "-1h")
                .replace("v.timeRangeStop", "now()").replace("v.windowPeriod", "1m")
                .replace("${farm:regex}", farm).replace("${zone:regex}", zone))
    assert "v." not in concrete.replace("fn: (r) =>", "") and "$" not in concrete.replace("$/", ""), concrete
    return concrete


def by_panel(name: str) -> dict[str, str]:
    """Panel title -> its Flux query; template variable name -> its query."""
    board = load(name)
    found = {panel["title"]: target["query"] for panel in panels(board)
             for target in panel.get("targets", []) if target["datasource"]["type"] == "influxdb"}
    found.update({variable["name"]: variable["query"]
                  for variable in board.get("templating", {}).get("list", [])
                  if variable["datasource"]["type"] == "influxdb"})
    return found


def test_every_dashboard_flux_query_runs_on_influxdb_and_finds_the_fleet(influxdb):
    """Each Flux query of the dashboards, run with Grafana's read-only token on a real InfluxDB 2.7.12
    holding a known fleet, answers with data; the stat panels and the variables count what was written."""
    write_fleet(influxdb, int(time.time()))
    flux = by_panel("farm-overview")
    assert len(flux) >= 10 and not [q for q in queries(load("pipeline-health"), "influxdb")]
    for title, query in flux.items():
        assert influxdb.query(grafana_flux(query, influxdb.bucket)), f"{title}: no data"

    def values(title: str, **selected: str) -> list[object]:
        rows = influxdb.query(grafana_flux(flux[title], influxdb.bucket, **selected))
        return [row["_value"] for row in rows]

    all_devices = sum(len(devices) for zones in FLEET.values() for devices in zones.values())
    assert values("Devices reporting") == [all_devices]
    assert values("Devices reporting", farm="farm-a") == [3]
    assert values("Readings stored") == [10 * all_devices]
    assert sorted(values("farm")) == sorted(FLEET)
    assert sorted(values("zone", farm="farm-a")) == sorted(FLEET["farm-a"])
    latest = influxdb.query(grafana_flux(flux["Latest readings"], influxdb.bucket))
    assert [row["device_id"] for row in latest] == sorted(
        device for zones in FLEET.values() for devices in zones.values() for device in devices)
    assert {row["ph"] for row in latest} == {10.0}


def test_promql_check_rejects_a_broken_query(running_prometheus):
    url = f"{running_prometheus.base}/api/v1/query?{urllib.parse.urlencode({'query': 'sum(rate(up[1m])'})}"
    with pytest.raises(urllib.error.HTTPError):
        get_json(url)


# --- the producer rate counts each message once, whatever the number of brokers ----------------

# Partition -> messages appended per second. Each broker counts the messages produced to the partitions it
# leads (a follower copies them without counting them), per topic and in an all-topics total without a
# topic label; neither another topic nor that total may count.
PARTITION_RATES = {0: 1, 1: 2, 2: 3}
APPENDED_PER_SECOND = 6
MESSAGES_IN = "kafka_server_brokertopicmetrics_messagesin_total"
OFFSETS_PER_SECOND = 50


def messages_in_series(brokers: int, minutes: int = 15) -> list[dict[str, str]]:
    """The brokers' messages-in counters as `brokers` metrics agents would expose them (partition p led by
    broker p mod brokers)."""
    series = []
    for broker in range(brokers):
        readings = sum(rate for partition, rate in PARTITION_RATES.items() if partition % brokers == broker)
        offsets = OFFSETS_PER_SECOND if broker == 0 else 0
        labels = f'instance="broker-{broker + 1}:9404", job="kafka", stack="test"'
        for topic, per_second in ((f', topic="{contract.READINGS_TOPIC}"', readings),
                                  (', topic="__consumer_offsets"', offsets), ("", readings + offsets)):
            series.append({"series": f"{MESSAGES_IN}{{{labels}{topic}}}",
                           "values": f"0+{per_second * 60}x{minutes}"})
    return series


@pytest.mark.parametrize("brokers", [1, 3])
def test_the_producer_rate_panel_counts_each_appended_message_once(brokers, tmp_path, promtool):
    (appended,) = [t["expr"] for t in by_title(load("pipeline-health"))["Producer rate"]["targets"]
                   if MESSAGES_IN in t["expr"]]
    concrete = appended.replace("$__rate_interval", "5m").replace("$stack", "test")
    cases = {"evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": messages_in_series(brokers),
        "promql_expr_test": [{"expr": concrete, "eval_time": "10m",
                              "exp_samples": [{"labels": "{}", "value": APPENDED_PER_SECOND}]}],
    }]}
    path = tmp_path / "producer_rate_test.yml"
    path.write_text(yaml.safe_dump(cases, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, f"{brokers} brokers: {concrete}\n{result.stdout}{result.stderr}"
