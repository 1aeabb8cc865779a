"""Sliding-window statistics per farm and zone over valid readings (event time, watermark)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from hydrostream_jobs.contract import VALUE_FIELDS

# (field, is integer) of every sensor_window_stats field, in output order.
WINDOW_STAT_FIELDS: tuple[tuple[str, bool], ...] = (
    *((f"{name}_{stat}", False) for name in VALUE_FIELDS for stat in ("mean", "min", "max")),
    ("readings", True),
    ("devices", True),
)


def window_stats(readings: DataFrame, window: str, slide: str, watermark: str) -> DataFrame:
    """Mean/min/max of each value, reading count and approximate device count per window, farm and zone.

    Windows are epoch-aligned [start, end); `window_end` is the point time. The watermark is a
    no-op on a batch DataFrame, so the same function is tested in batch mode.
    """
    aggregates = []
    for name in VALUE_FIELDS:
        aggregates += [
            F.avg(name).alias(f"{name}_mean"),
            F.min(name).alias(f"{name}_min"),
            F.max(name).alias(f"{name}_max"),
        ]
    aggregates += [F.count(F.lit(1)).alias("readings"), F.approx_count_distinct("device_id").alias("devices")]
    return (
        readings.withWatermark("event_time", watermark)
        .groupBy(F.window("event_time", window, slide), "farm_id", "zone")
        .agg(*aggregates)
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "farm_id",
            "zone",
            *[name for name, _ in WINDOW_STAT_FIELDS],
        )
    )
