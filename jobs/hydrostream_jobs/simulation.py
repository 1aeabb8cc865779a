"""Simulated sensor readings: farms x zones x devices, daily cycles, drift, noise, faults, malformed share.

Every random draw is a hash of (seed, sequence number, salt), so the output depends only on the
seed and the sequence, never on partitioning or timing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hydrostream_jobs.contract import ID_FIELDS, TIME_FIELD, VALUE_FIELDS

_HASH_RANGE = 1 << 31
_MICROS_PER_HOUR = 3_600_000_000
_MICROS_PER_DAY = 24 * _MICROS_PER_HOUR
# A DS18B20 probe that lost power reads 85 °C: a classic real sensor fault, outside the water range.
FAULT_WATER_TEMP_C = 85.0
MALFORMED_KINDS = 5


@dataclass(frozen=True)
class Fleet:
    """How many farms, devices and zones the simulation has, and its seed."""

    farms: int
    devices_per_farm: int
    zones_per_farm: int
    seed: int

    @property
    def devices(self) -> int:
        return self.farms * self.devices_per_farm


def _uniform(seed: int, salt: int, *keys: Column) -> Column:
    """A deterministic draw in [0, 1) from the seed, a salt and key columns."""
    return F.pmod(F.xxhash64(F.lit(seed), F.lit(salt), *keys), F.lit(_HASH_RANGE)) / float(_HASH_RANGE)


def _normal(seed: int, salt: int, key: Column) -> Column:
    """An approximately standard normal draw (Irwin-Hall with four uniforms)."""
    total = sum((_uniform(seed, salt * 10 + i, key) for i in range(4)), F.lit(0.0))
    return (total - 2.0) * math.sqrt(3.0)


def _sine(phase: Column) -> Column:
    return F.sin(phase * (2 * math.pi))


def sensor_values(fleet: Fleet, seq: Column, device: Column, micros: Column) -> dict[str, Column]:
    """The seven values of one reading, by field name."""
    seed = fleet.seed
    hour = (micros % _MICROS_PER_DAY) / float(_MICROS_PER_HOUR)
    days = micros / float(_MICROS_PER_DAY)
    daylight = F.when((hour >= 6) & (hour < 22), F.sin((hour - 6) * (math.pi / 16))).otherwise(F.lit(0.0))
    daily = _sine((hour - 9) / 24)
    offset = _uniform(seed, 1, device) - 0.5
    drift = _sine(days / 3 + _uniform(seed, 2, device))
    water = 19.5 + 1.2 * _sine((hour - 10) / 24) + 0.5 * offset + 0.1 * _normal(seed, 13, seq)
    values = {
        "ph": 5.9 + 0.25 * drift + 0.2 * offset + 0.03 * _normal(seed, 11, seq),
        "ec_ms_cm": 1.6 + 0.15 * drift + 0.2 * offset + 0.02 * _normal(seed, 12, seq),
        "water_temp_c": water,
        "air_temp_c": 22 + 3.5 * daily + 1.5 * daylight + offset + 0.2 * _normal(seed, 14, seq),
        "humidity_pct": 68 - 6 * daily + 3 * offset + 0.8 * _normal(seed, 15, seq),
        "light_ppfd": F.greatest(
            F.lit(0.0), daylight * (900 * (1 + 0.1 * offset) + 15 * _normal(seed, 16, seq))
        ),
        "dissolved_oxygen_mg_l": 8.6 - 0.18 * (water - 20) + 0.3 * offset + 0.05 * _normal(seed, 17, seq),
    }
    assert tuple(values) == VALUE_FIELDS
    return {name: F.round(value, 2) for name, value in values.items()}


def _malformed(value: Column, draw: Column) -> Column:
    kind = F.floor(draw * MALFORMED_KINDS)
    return (
        F.when(kind == 0, value.substr(F.lit(1), F.floor(F.length(value) / 2).cast("int")))
        .when(kind == 1, F.lit(""))
        .when(kind == 2, F.lit("sensor reboot: no json"))
        .when(kind == 3, F.regexp_replace(value, r'"ph":(-?[0-9.Ee+]+)', '"ph":"$1"'))
        .otherwise(F.regexp_replace(value, r',"ts":"[^"]*"', ""))
    )


def simulated_messages(
    ticks: DataFrame, fleet: Fleet, fault_share: float, malformed_share: float
) -> DataFrame:
    """`seq` (long) and `event_time` (timestamp) ticks -> Kafka-shaped `key` (device id) and JSON `value`."""
    seq = F.col("seq")
    device = seq % fleet.devices
    in_farm = device % fleet.devices_per_farm
    micros = F.unix_micros(F.col("event_time"))
    values = sensor_values(fleet, seq, device, micros)
    faulty = _uniform(fleet.seed, 90, seq) < fault_share
    values["water_temp_c"] = F.when(faulty, F.lit(FAULT_WATER_TEMP_C)).otherwise(values["water_temp_c"])
    ids = {
        "farm_id": F.format_string("farm-%02d", (device / fleet.devices_per_farm).cast("int") + 1),
        "zone": F.format_string("bay-%d", in_farm % fleet.zones_per_farm + 1),
        "device_id": F.format_string("hp-%04d", device + 1),
    }
    assert tuple(ids) == ID_FIELDS
    ts = F.date_format(F.col("event_time"), "yyyy-MM-dd'T'HH:mm:ss.SSSXXX")
    reading = F.to_json(
        F.struct(
            *[c.alias(n) for n, c in ids.items()],
            ts.alias(TIME_FIELD),
            *[c.alias(n) for n, c in values.items()],
        )
    )
    malformed = _uniform(fleet.seed, 91, seq) < malformed_share
    value = F.when(malformed, _malformed(reading, _uniform(fleet.seed, 92, seq))).otherwise(reading)
    return ticks.select(ids["device_id"].alias("key"), value.alias("value"))
