"""InfluxDB line protocol built in Spark SQL: escaped tags, float fields, nanosecond event times."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hydrostream_jobs.contract import (
    ID_FIELDS,
    READINGS_MEASUREMENT,
    VALUE_FIELDS,
    WINDOW_STATS_MEASUREMENT,
)
from hydrostream_jobs.windows import WINDOW_STAT_FIELDS

WINDOW_TAGS = ("farm_id", "zone")


def escape_tag(value: Column) -> Column:
    """Escape commas, equals signs and spaces, as line protocol requires in tag values."""
    # Most ids hold none of them: three byte scans (contains, not the character-counting instr) spare
    # those the regex replace.
    plain = ~(value.contains(",") | value.contains("=") | value.contains(" "))
    return F.when(plain, value).otherwise(F.regexp_replace(value, r"([,= ])", r"\\$1"))


def _tags(names: tuple[str, ...]) -> list[Column]:
    parts: list[Column] = []
    for name in names:
        parts += [F.lit(f",{name}="), escape_tag(F.col(name))]
    return parts


def _fields(fields: list[tuple[str, bool]]) -> list[Column]:
    # Java's Double.toString always prints a '.' or an exponent, so floats stay floats ("412.0");
    # integer fields carry the `i` suffix.
    parts: list[Column] = []
    for index, (name, is_integer) in enumerate(fields):
        if is_integer:
            text = F.concat(F.col(name).cast("string"), F.lit("i"))
        else:
            text = F.col(name).cast("double").cast("string")
        parts += [F.lit(("," if index else " ") + f"{name}="), text]
    return parts


def readings_line() -> Column:
    """A valid reading as `sensor_readings,<ids> <seven floats> <event time ns>`."""
    return F.concat(
        F.lit(READINGS_MEASUREMENT),
        *_tags(ID_FIELDS),
        *_fields([(name, False) for name in VALUE_FIELDS]),
        F.lit(" "),
        F.col("time_ns").cast("string"),
    )


def window_stats_line() -> Column:
    """A window_stats row as `sensor_window_stats,farm_id=..,zone=.. <stats> <window end ns>`."""
    end_ns = F.unix_micros(F.col("window_end")) * 1000
    return F.concat(
        F.lit(WINDOW_STATS_MEASUREMENT),
        *_tags(WINDOW_TAGS),
        *_fields(list(WINDOW_STAT_FIELDS)),
        F.lit(" "),
        end_ns.cast("string"),
    )


def readings_lines(readings: DataFrame) -> DataFrame:
    """One `line` column per valid reading."""
    return readings.select(readings_line().alias("line"))


def window_stats_lines(stats: DataFrame) -> DataFrame:
    """One `line` column per window, farm and zone."""
    return stats.select(window_stats_line().alias("line"))
