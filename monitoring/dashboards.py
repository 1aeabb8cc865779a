"""Grafana dashboards as code (grafana-foundation-sdk, Grafana 11 build), emitted as checked-in JSON.

    python -m monitoring.dashboards      # rewrites monitoring/grafana/dashboards/*.json

"Farm overview" reads InfluxDB (Flux) and "Pipeline health" reads Prometheus (PromQL). Every
measurement, field, tag, topic and metric name comes from the jobs' data contract; the data
source uids from infra/render/grafana_config.py (the provisioning file fixes them).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grafana_foundation_sdk.builders import bargauge, common, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from hydrostream_jobs import contract

from infra.render.grafana_config import DASHBOARDS_DIR, INFLUXDB_UID, PROMETHEUS_UID

INFLUXDB = dm.DataSourceRef(type_val="influxdb", uid=INFLUXDB_UID)
PROMETHEUS = dm.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

FARM_TAG, ZONE_TAG, DEVICE_TAG = contract.ID_FIELDS
READINGS = contract.READINGS_MEASUREMENT
WINDOW_STATS = contract.WINDOW_STATS_MEASUREMENT


@dataclass(frozen=True)
class Reading:
    """How one value field is shown: title, Grafana unit and the agronomic target band."""

    title: str
    unit: str
    low: float | None
    high: float | None


# Target bands for leafy greens and herbs in recirculating hydroponics (lettuce, basil): the
# values growers aim for, well inside the physically possible ranges the contract validates.
READINGS_SHOWN: dict[str, Reading] = {
    "ph": Reading("pH", "none", 5.5, 6.5),
    "ec_ms_cm": Reading("EC", "suffix: mS/cm", 1.2, 2.4),
    "water_temp_c": Reading("Water temperature", "celsius", 18.0, 22.0),
    "air_temp_c": Reading("Air temperature", "celsius", 18.0, 26.0),
    "humidity_pct": Reading("Relative humidity", "humidity", 50.0, 70.0),
    "light_ppfd": Reading("Light (PPFD)", "suffix: µmol/m²/s", 200.0, 600.0),
    "dissolved_oxygen_mg_l": Reading("Dissolved oxygen", "suffix: mg/L", 6.0, None),
}


class FluxQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """An InfluxDB Flux query target (the SDK has no InfluxDB query builder)."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._data: dict[str, object] = {"refId": ref_id, "datasource": INFLUXDB, "query": query}

    def build(self) -> cogvariants.Dataquery:
        return UnknownDataquery(dict(self._data))


def _flux(*lines: str) -> str:
    return "\n  |> ".join(lines)


_FROM = "from(bucket: v.defaultBucket)"
_RANGE = "range(start: v.timeRangeStart, stop: v.timeRangeStop)"
_WINDOW_MEAN = "aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)"
# Grafana's `regex` format escapes the selected values and joins several with `|`; "All" is `.*`.
_FARM_ZONE = (f"filter(fn: (r) => r.{FARM_TAG} =~ /^${{farm:regex}}$/"
              f" and r.{ZONE_TAG} =~ /^${{zone:regex}}$/)")


def _measurement_field(measurement: str, field: str) -> str:
    return f'filter(fn: (r) => r._measurement == "{measurement}" and r._field == "{field}")'


def _tag_values(tag: str, predicate: str) -> str:
    return ('import "influxdata/influxdb/schema"\n'
            f'schema.tagValues(bucket: v.defaultBucket, tag: "{tag}", start: -30d,\n'
            f"  predicate: (r) => {predicate})")


def _thresholds(steps: Sequence[tuple[float | None, str]]) -> db.ThresholdsConfig:
    return (db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE)
            .steps([dm.Threshold(value=value, color=color) for value, color in steps]))


def _band(reading: Reading) -> db.ThresholdsConfig:
    """Below the band orange, inside green, above red: shaded behind the series."""
    steps: list[tuple[float | None, str]] = [(None, "orange"), (reading.low, "green")]
    if reading.high is not None:
        steps.append((reading.high, "red"))
    return _thresholds(steps)


class _Ids:
    """Stable panel ids in layout order, so regenerating yields identical JSON."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        self._next += 1
        return self._next


def farm_overview() -> db.Dashboard:
    """Per farm/zone readings with target bands, device counts and the latest reading per device."""
    next_id = _Ids()
    farm_var = (db.QueryVariable("farm").label("Farm").datasource(INFLUXDB)
                .query(_tag_values(FARM_TAG, f'r._measurement == "{READINGS}"'))
                .multi(True).include_all(True).all_value(".*")
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))
    zone_var = (db.QueryVariable("zone").label("Zone").datasource(INFLUXDB)
                .query(_tag_values(ZONE_TAG, f'r._measurement == "{READINGS}"'
                                             f" and r.{FARM_TAG} =~ /^${{farm:regex}}$/"))
                .multi(True).include_all(True).all_value(".*")
                .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))

    board = (db.Dashboard("Farm overview").uid("hydro-farm-overview")
             .description("Sensor readings per farm and zone (1-minute sliding-window means from "
                          f"{WINDOW_STATS}), against the agronomic target bands (green).")
             .tags(["hydrostream", "farm"]).time("now-6h", "now").refresh("1m").timezone("utc")
             .tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly()
             .with_variable(farm_var).with_variable(zone_var))

    board.with_row(db.Row("Fleet").id(next_id()))
    board.with_panel(
        stat.Panel().id(next_id()).title("Devices reporting").datasource(INFLUXDB)
        .description(f"Distinct devices in the latest window of each zone ({WINDOW_STATS}.devices, "
                     "approximate), summed over the selected zones.")
        .with_target(FluxQuery(_flux(_FROM, _RANGE, _measurement_field(WINDOW_STATS, "devices"),
                                     _FARM_ZONE, "last()", "group()", "sum()")))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.NONE).graph_mode(cm.BigValueGraphMode.NONE)
        .height(6).span(6))
    board.with_panel(
        bargauge.Panel().id(next_id()).title("Devices per zone").datasource(INFLUXDB)
        .description(f"Distinct devices in each zone's latest window ({WINDOW_STATS}.devices).")
        .with_target(FluxQuery(_flux(_FROM, _RANGE, _measurement_field(WINDOW_STATS, "devices"),
                                     _FARM_ZONE, "last()",
                                     f'keep(columns: ["_value", "{FARM_TAG}", "{ZONE_TAG}"])')))
        .display_name(f"${{__field.labels.{FARM_TAG}}} / ${{__field.labels.{ZONE_TAG}}}")
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .display_mode(cm.BarGaugeDisplayMode.BASIC).min(0)
        .height(6).span(9))
    board.with_panel(
        stat.Panel().id(next_id()).title("Readings stored").datasource(INFLUXDB)
        .description(f"Valid readings written to {READINGS} in the selected time range and zones.")
        .with_target(FluxQuery(_flux(_FROM, _RANGE, _measurement_field(READINGS, contract.VALUE_FIELDS[0]),
                                     _FARM_ZONE, "count()", "group()", "sum()")))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.NONE).graph_mode(cm.BigValueGraphMode.NONE)
        .height(6).span(9))

    board.with_row(db.Row("Readings (window means) against target bands").id(next_id()))
    for field, reading in READINGS_SHOWN.items():
        band = f"{reading.low:g} to {reading.high:g}" if reading.high is not None else f"from {reading.low:g}"
        board.with_panel(
            timeseries.Panel().id(next_id()).title(reading.title).datasource(INFLUXDB)
            .description(f"{WINDOW_STATS}.{field}_mean per farm/zone; target band {band} shaded green.")
            .with_target(FluxQuery(_flux(_FROM, _RANGE, _measurement_field(WINDOW_STATS, f"{field}_mean"),
                                         _FARM_ZONE, _WINDOW_MEAN,
                                         f'keep(columns: ["_time", "_value", "{FARM_TAG}", "{ZONE_TAG}"])')))
            .display_name(f"${{__field.labels.{FARM_TAG}}} / ${{__field.labels.{ZONE_TAG}}}")
            .unit(reading.unit).thresholds(_band(reading))
            .thresholds_style(common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.LINE_AND_AREA))
            .legend(common.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
                    .placement(cm.LegendPlacement.BOTTOM))
            .height(8).span(12))

    fields = " or ".join(f'r._field == "{field}"' for field in contract.VALUE_FIELDS)
    board.with_row(db.Row("Latest readings").id(next_id()))
    board.with_panel(
        table.Panel().id(next_id()).title("Latest readings").datasource(INFLUXDB)
        .description(f"The last reading of every device in the selected zones ({READINGS}).")
        .with_target(FluxQuery(_flux(
            _FROM, _RANGE, f'filter(fn: (r) => r._measurement == "{READINGS}")', _FARM_ZONE,
            f"filter(fn: (r) => {fields})", "last()",
            f'pivot(rowKey: ["_time", "{FARM_TAG}", "{ZONE_TAG}", "{DEVICE_TAG}"], '
            'columnKey: ["_field"], valueColumn: "_value")',
            "group()", f'sort(columns: ["{FARM_TAG}", "{ZONE_TAG}", "{DEVICE_TAG}"])')))
        .height(12).span(24))
    return board


def _prom(expr: str, legend: str, ref_id: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref_id).datasource(PROMETHEUS)


def _series(title: str, description: str, unit: str, *targets: prometheus.Dataquery) -> timeseries.Panel:
    panel = (timeseries.Panel().title(title).description(description).datasource(PROMETHEUS).unit(unit)
             .legend(common.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
                     .placement(cm.LegendPlacement.BOTTOM))
             .height(8).span(12))
    for target in targets:
        panel.with_target(target)
    return panel


def pipeline_health() -> db.Dashboard:
    """Throughput, latency, data quality and errors of the pipeline, and its scrape targets."""
    next_id = _Ids()
    s = '{stack=~"$stack"}'
    rate = "[$__rate_interval]"
    stack_var = (db.QueryVariable("stack").label("Stack").datasource(PROMETHEUS)
                 .query("label_values(up, stack)").refresh(dm.VariableRefresh.ON_DASHBOARD_LOAD))
    records = contract.CONSUMER_RECORDS_TOTAL
    quarantined = f'{{stack=~"$stack", status="{contract.STATUS_QUARANTINED}"}}'
    batch = contract.CONSUMER_BATCH_DURATION_SECONDS

    board = (db.Dashboard("Pipeline health").uid("hydro-pipeline-health")
             .description("Kafka → Spark → InfluxDB: is data flowing, how far behind, how clean, "
                          "and is every scrape target up.")
             .tags(["hydrostream", "pipeline"]).time("now-3h", "now").refresh("30s").timezone("utc")
             .tooltip(dm.DashboardCursorSync.CROSSHAIR).readonly()
             .with_variable(stack_var))

    board.with_row(db.Row("Throughput").id(next_id()))
    board.with_panel(_series(
        "Rows in / out per second",
        "In: messages consumed by validity and Spark's input rate per query. Out: points InfluxDB "
        "accepted, per measurement.", "rowsps",
        _prom(f"sum by (status) (rate({records}{s}{rate}))", "consumed {{status}}", "A"),
        _prom(f"sum by (query) ({contract.CONSUMER_INPUT_ROWS_PER_SECOND}{s})", "Spark input {{query}}", "B"),
        _prom(f"sum by (measurement) (rate({contract.CONSUMER_POINTS_WRITTEN_TOTAL}{s}{rate}))",
              "written {{measurement}}", "C"),
    ).id(next_id()))
    board.with_panel(_series(
        "Producer rate",
        "Messages the producer wrote, and the messages the brokers appended to the readings topic "
        "(their own metrics): the two lines should meet.", "rowsps",
        _prom(f"sum(rate({contract.PRODUCER_MESSAGES_SENT_TOTAL}{s}{rate}))", "producer sent", "A"),
        # A broker counts the messages produced to the partitions it leads (never the ones it copies as a
        # follower), so the sum over the brokers counts each message once.
        _prom(f'sum(rate(kafka_server_brokertopicmetrics_messagesin_total{{'
              f'stack=~"$stack", topic="{contract.READINGS_TOPIC}"}}{rate}))',
              f"appended to {contract.READINGS_TOPIC}", "B"),
    ).id(next_id()))

    board.with_row(db.Row("Latency").id(next_id()))
    board.with_panel(_series(
        "Batch duration",
        "Micro-batch duration per query: above the trigger interval, the consumer falls behind "
        "(alert HydroBatchSlowerThanTrigger).", "s",
        _prom(f"histogram_quantile(0.95, sum by (query, le) (rate({batch}_bucket{s}{rate})))",
              "p95 {{query}}", "A"),
        _prom(f"sum by (query) (rate({batch}_sum{s}{rate})) / sum by (query) (rate({batch}_count{s}{rate}))",
              "mean {{query}}", "B"),
    ).id(next_id()))
    board.with_panel(_series(
        "Watermark lag",
        "Wall clock minus the window aggregation's watermark; normally the watermark delay plus a "
        "batch (alert HydroWatermarkLagGrowing).", "s",
        _prom(f"max({contract.CONSUMER_WATERMARK_LAG_SECONDS}{s})", "watermark lag"),
    ).id(next_id()))
    board.with_panel(_series(
        "Kafka offsets behind latest",
        "Largest per-partition lag of the consumer behind the latest offset "
        "(alert HydroKafkaOffsetsBehindGrowing).", "short",
        _prom(f"max({contract.CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST}{s})", "offsets behind"),
    ).id(next_id()))
    board.with_panel(_series(
        "Late rows dropped",
        "Rows the window aggregation dropped because they arrived after the watermark.", "rowsps",
        _prom(f"sum(rate({contract.CONSUMER_LATE_ROWS_DROPPED_TOTAL}{s}{rate}))", "dropped late"),
    ).id(next_id()))

    board.with_row(db.Row("Data quality and errors").id(next_id()))
    board.with_panel(_series(
        "Quarantine rate",
        "Messages quarantined per second by reason code, and their share of all consumed. Each "
        "message itself is in the dead-letter files (--dead-letter-path) with its reason and detail.",
        "rowsps",
        _prom(f"sum by (reason) (rate({contract.CONSUMER_QUARANTINED_TOTAL}{s}{rate}))", "{{reason}}", "A"),
        _prom(f"sum(rate({records}{quarantined}{rate})) / sum(rate({records}{s}{rate}))",
              "share of consumed", "B"),
    ).id(next_id()).override_by_name("share of consumed", [
        dm.DynamicConfigValue(id_val="unit", value="percentunit"),
        dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
    ]))
    board.with_panel(_series(
        "Sink errors",
        "Failed InfluxDB write attempts (retried, then failing the batch): alert HydroSinkErrors.", "short",
        _prom(f"sum by (instance) (increase({contract.CONSUMER_SINK_ERRORS_TOTAL}{s}[5m]))",
              "failed writes in 5 min {{instance}}"),
    ).id(next_id()).draw_style(cm.GraphDrawStyle.BARS))

    board.with_row(db.Row("Targets and hosts").id(next_id()))
    board.with_panel(
        stat.Panel().id(next_id()).title("Scrape targets up").datasource(PROMETHEUS)
        .description("Every target Prometheus scrapes (alert HydroTargetDown after 3 minutes down).")
        .with_target(_prom(f"up{s}", "{{job}} {{instance}}"))
        .mappings([dm.ValueMap(options={"0": dm.ValueMappingResult(text="DOWN", color="red"),
                                        "1": dm.ValueMappingResult(text="UP", color="green")})])
        .thresholds(_thresholds([(None, "red"), (1, "green")]))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .color_mode(cm.BigValueColorMode.BACKGROUND).graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .height(8).span(12))
    data_disk = '{stack=~"$stack", mountpoint=~"/mnt/disks/data.*"}'
    board.with_panel(
        bargauge.Panel().id(next_id()).title("Data disk free").datasource(PROMETHEUS)
        .description("Free share of the data disk of each service VM (alerts below 15% and 5%).")
        .with_target(_prom(f"node_filesystem_avail_bytes{data_disk} / node_filesystem_size_bytes{data_disk}",
                           "{{instance}}"))
        .unit("percentunit").min(0).max(1)
        .thresholds(_thresholds([(None, "red"), (0.05, "orange"), (0.15, "green")]))
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .height(8).span(12))
    return board


DASHBOARDS = {"farm-overview": farm_overview, "pipeline-health": pipeline_health}


def dashboard_json(name: str) -> str:
    """The JSON text of one dashboard, exactly as checked in."""
    return json.dumps(DASHBOARDS[name]().build(), cls=JSONEncoder, indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def write_all(directory: Path = DASHBOARDS_DIR) -> list[Path]:
    """Regenerate every dashboard's JSON file; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in DASHBOARDS:
        path = directory / f"{name}.json"
        path.write_text(dashboard_json(name))
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all():
        print(written.relative_to(Path.cwd()) if written.is_relative_to(Path.cwd()) else written)
    sys.exit(0)
