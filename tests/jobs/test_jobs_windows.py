"""Sliding-window membership and statistics, and the line protocol of both measurements."""

from __future__ import annotations

from datetime import UTC, datetime

from hydrostream_jobs.line_protocol import readings_lines, window_stats_lines
from hydrostream_jobs.windows import window_stats
from pyspark.sql import functions as F

from tests.jobs.influx_fake import parse_line

VALUES = (
    "ph",
    "ec_ms_cm",
    "water_temp_c",
    "air_temp_c",
    "humidity_pct",
    "light_ppfd",
    "dissolved_oxygen_mg_l",
)


def readings_frame(spark, rows):
    """rows: (farm, zone, device, 'HH:MM:SS', ph); other values fixed."""
    data = []
    for farm, zone, device, clock, ph in rows:
        event = datetime.fromisoformat(f"2026-01-01T{clock}+00:00")
        data.append((farm, zone, device, event, ph, 1.5, 20.0, 22.0, 70.0, 100.0, 8.0))
    frame = spark.createDataFrame(
        data,
        "farm_id string, zone string, device_id string, event_time timestamp, "
        + ", ".join(f"{v} double" for v in VALUES),
    )
    return frame.withColumn("time_ns", F.unix_micros("event_time") * 1000)


def at(clock: str) -> datetime:
    return datetime.fromisoformat(f"2026-01-01T{clock}+00:00").astimezone(UTC).replace(tzinfo=None)


def test_a_reading_belongs_to_every_sliding_window_that_covers_it(spark):
    frame = readings_frame(spark, [("f", "z", "d1", "00:02:30", 6.0)])
    windows = window_stats(frame, "5 minutes", "1 minute", "10 minutes").collect()
    # [start, end) windows of 5 minutes every minute containing 00:02:30: starts 23:58 .. 00:02
    assert sorted(w.window_end for w in windows) == [
        at("00:03:00"),
        at("00:04:00"),
        at("00:05:00"),
        at("00:06:00"),
        at("00:07:00"),
    ]


def test_window_boundaries_are_start_inclusive_end_exclusive(spark):
    frame = readings_frame(spark, [("f", "z", "d1", "00:05:00", 6.0)])
    ends = sorted(w.window_end for w in window_stats(frame, "5 minutes", "5 minutes", "10 minutes").collect())
    assert ends == [at("00:10:00")]


def test_means_extremes_and_device_counts_per_farm_and_zone(spark):
    frame = readings_frame(
        spark,
        [
            ("f1", "z1", "d1", "00:00:10", 5.0),
            ("f1", "z1", "d2", "00:01:00", 6.0),
            ("f1", "z1", "d1", "00:04:59", 7.0),
            ("f1", "z2", "d3", "00:02:00", 9.0),
            ("f1", "z1", "d3", "00:05:00", 1.0),  # next tumbling window
        ],
    )
    stats = {
        (w.farm_id, w.zone, w.window_end): w
        for w in window_stats(frame, "5 minutes", "5 minutes", "10 minutes").collect()
    }
    first = stats[("f1", "z1", at("00:05:00"))]
    assert (first.ph_mean, first.ph_min, first.ph_max) == (6.0, 5.0, 7.0)
    assert (first.readings, first.devices) == (3, 2)
    assert stats[("f1", "z2", at("00:05:00"))].readings == 1
    assert stats[("f1", "z1", at("00:10:00"))].ph_max == 1.0
    assert len(stats) == 3


def test_reading_lines_escape_tags_and_keep_floats_and_ns_times(spark):
    frame = readings_frame(spark, [("farm, one", "bay=3", "hp 42", "00:00:01", 7.0)])
    frame = frame.withColumn("time_ns", F.lit(1_767_225_601_123_456_789))
    [line] = [r.line for r in readings_lines(frame).collect()]
    assert line.startswith(r"sensor_readings,farm_id=farm\,\ one,zone=bay\=3,device_id=hp\ 42 ph=7.0,")
    (measurement, tags, time_ns), fields = parse_line(line)
    assert measurement == "sensor_readings"
    assert dict(tags) == {"farm_id": "farm, one", "zone": "bay=3", "device_id": "hp 42"}
    assert time_ns == 1_767_225_601_123_456_789
    assert fields["light_ppfd"] == 100.0 and isinstance(fields["light_ppfd"], float)


def test_window_lines_have_float_stats_integer_counts_and_the_window_end_as_time(spark):
    frame = readings_frame(spark, [("f", "z", "d1", "00:00:10", 6.0), ("f", "z", "d2", "00:00:20", 7.0)])
    stats = window_stats(frame, "1 minute", "1 minute", "10 minutes")
    [line] = [r.line for r in window_stats_lines(stats).collect()]
    (measurement, tags, time_ns), fields = parse_line(line)
    assert (measurement, dict(tags)) == ("sensor_window_stats", {"farm_id": "f", "zone": "z"})
    assert time_ns == 1_767_225_660 * 10**9  # 2026-01-01T00:01:00Z
    assert fields["ph_mean"] == 6.5 and fields["readings"] == 2 and fields["devices"] == 2
    assert isinstance(fields["readings"], int) and isinstance(fields["ph_min"], float)
    assert len(fields) == 7 * 3 + 2
