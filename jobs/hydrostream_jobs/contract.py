"""The data contract as code: topics, reading fields and ranges, measurements, metric names, ports.

The one source of truth for these facts. The jobs, the infrastructure (ports, topics), the alert
rules and the dashboards read them from here; docs/jobs.md is the prose version.
"""

from __future__ import annotations

from typing import Final

READINGS_TOPIC: Final = "hydro.readings"
DEAD_LETTER_TOPIC: Final = "hydro.readings.dead-letter"

PRODUCER_METRICS_PORT: Final = 8000
CONSUMER_METRICS_PORT: Final = 8001

ID_FIELDS: Final = ("farm_id", "zone", "device_id")
TIME_FIELD: Final = "ts"

# value field -> (lowest, highest) physically possible value, both bounds included.
VALUE_RANGES: Final[dict[str, tuple[float, float]]] = {
    "ph": (0.0, 14.0),
    "ec_ms_cm": (0.0, 10.0),
    "water_temp_c": (0.0, 40.0),
    "air_temp_c": (-10.0, 50.0),
    "humidity_pct": (0.0, 100.0),
    "light_ppfd": (0.0, 2500.0),
    "dissolved_oxygen_mg_l": (0.0, 20.0),
}
VALUE_FIELDS: Final = tuple(VALUE_RANGES)

READINGS_MEASUREMENT: Final = "sensor_readings"
WINDOW_STATS_MEASUREMENT: Final = "sensor_window_stats"
MEASUREMENTS: Final = (READINGS_MEASUREMENT, WINDOW_STATS_MEASUREMENT)

# Prometheus metric names as exposed (counters carry the `_total` suffix on the wire).
CONSUMER_RECORDS_TOTAL: Final = "hydro_consumer_records_total"
CONSUMER_POINTS_WRITTEN_TOTAL: Final = "hydro_consumer_points_written_total"
CONSUMER_SINK_ERRORS_TOTAL: Final = "hydro_consumer_sink_errors_total"
CONSUMER_BATCH_DURATION_SECONDS: Final = "hydro_consumer_batch_duration_seconds"
CONSUMER_INPUT_ROWS_PER_SECOND: Final = "hydro_consumer_input_rows_per_second"
CONSUMER_WATERMARK_LAG_SECONDS: Final = "hydro_consumer_watermark_lag_seconds"
CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST: Final = "hydro_consumer_kafka_offsets_behind_latest"
PRODUCER_MESSAGES_SENT_TOTAL: Final = "hydro_producer_messages_sent_total"
METRIC_NAMES: Final = (
    CONSUMER_RECORDS_TOTAL,
    CONSUMER_POINTS_WRITTEN_TOTAL,
    CONSUMER_SINK_ERRORS_TOTAL,
    CONSUMER_BATCH_DURATION_SECONDS,
    CONSUMER_INPUT_ROWS_PER_SECOND,
    CONSUMER_WATERMARK_LAG_SECONDS,
    CONSUMER_KAFKA_OFFSETS_BEHIND_LATEST,
    PRODUCER_MESSAGES_SENT_TOTAL,
)

# Beyond the contract's metric list (kept out of METRIC_NAMES): rows the window aggregation dropped because
# they arrived later than the watermark ("dropped and counted").
CONSUMER_LATE_ROWS_DROPPED_TOTAL: Final = "hydro_consumer_late_rows_dropped_total"
# Every InfluxDB write attempt, failed or not: with CONSUMER_SINK_ERRORS_TOTAL, the sink's error ratio.
CONSUMER_SINK_WRITE_ATTEMPTS_TOTAL: Final = "hydro_consumer_sink_write_attempts_total"
# sensor_readings points InfluxDB accepted within the freshness objective (--freshness-objective) of their
# event time; over the sensor_readings points written, the freshness SLI.
CONSUMER_READINGS_ON_TIME_TOTAL: Final = "hydro_consumer_readings_on_time_total"
# Quarantined messages by reason code (the dead-letter records' `reason`), for the on-call's first look.
CONSUMER_QUARANTINED_TOTAL: Final = "hydro_consumer_quarantined_total"

# Label values of CONSUMER_RECORDS_TOTAL's `status` label.
STATUS_VALID: Final = "valid"
STATUS_QUARANTINED: Final = "quarantined"

# InfluxDB v2 write API path; points are always written with nanosecond precision.
INFLUX_WRITE_PATH: Final = "/api/v2/write"
INFLUX_PRECISION: Final = "ns"
