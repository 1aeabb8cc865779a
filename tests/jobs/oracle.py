"""Independent plain-Python reading of the data contract: what the consumer must accept and write.

Written from the prose contract (docs/jobs.md), not from the code, so the tests compare two readings of it.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import unicodedata
from collections import defaultdict
from datetime import datetime

RANGES = {
    "ph": (0.0, 14.0),
    "ec_ms_cm": (0.0, 10.0),
    "water_temp_c": (0.0, 40.0),
    "air_temp_c": (-10.0, 50.0),
    "humidity_pct": (0.0, 100.0),
    "light_ppfd": (0.0, 2500.0),
    "dissolved_oxygen_mg_l": (0.0, 20.0),
}
IDS = ("farm_id", "zone", "device_id")
TS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def _reject_constant(name):
    raise ValueError(name)


def event_time_ns(ts: str) -> int | None:
    """Nanoseconds since the epoch of a contract timestamp, None when it is not one."""
    match = TS.fullmatch(ts)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8)
    try:
        naive = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    shift = 0
    if offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if minutes > 59 or hours * 60 + minutes > 18 * 60:
            return None
        shift = (hours * 3600 + minutes * 60) * (1 if offset[0] == "+" else -1)
    seconds = calendar.timegm(naive.timetuple()) - shift
    if abs(seconds) > 9_223_372_035:
        return None
    return seconds * 1_000_000_000 + int(fraction.ljust(9, "0"))


def check(message: bytes | None) -> tuple[str | None, dict | None]:
    """(reason, None) for a quarantined message, (None, reading with time_ns) for a valid one."""
    if not message:
        return "empty", None
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8", None
    try:
        obj = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return "malformed_json", None
    if not isinstance(obj, dict):
        return "malformed_json", None
    for name in IDS:
        value = obj.get(name)
        if value is None:
            return "missing_field", None
        if not isinstance(value, str):
            return "wrong_type", None
        if value == "" or any(unicodedata.category(c) == "Cc" for c in value):
            return "bad_id", None
        if re.search(r"\\([,= \\]|$)", value):
            return "bad_id", None
    ts = obj.get("ts")
    if ts is None:
        return "missing_field", None
    if not isinstance(ts, str) or event_time_ns(ts) is None:
        return "bad_timestamp", None
    reading = {name: obj[name] for name in IDS}
    reading["time_ns"] = event_time_ns(ts)
    for name, (low, high) in RANGES.items():
        value = obj.get(name)
        if value is None:
            return "missing_field", None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "wrong_type", None
        try:
            number = float(value)
        except OverflowError:
            number = math.copysign(math.inf, value)
        if not low <= number <= high:
            return "out_of_range", None
        reading[name] = number
    return None, reading


def window_stats(readings: list[dict], window_s: int, slide_s: int) -> dict[tuple, dict]:
    """(farm, zone, window end ns) -> stats over epoch-aligned sliding windows [start, end)."""
    members: dict[tuple, list[dict]] = defaultdict(list)
    for r in readings:
        t_ns = r["time_ns"]
        # every window start s with s <= t < s + window, s a multiple of slide
        last_start = (t_ns // (slide_s * 10**9)) * slide_s * 10**9
        start = last_start
        while start > t_ns - window_s * 10**9:
            members[(r["farm_id"], r["zone"], start + window_s * 10**9)].append(r)
            start -= slide_s * 10**9
    stats = {}
    for key, rows in members.items():
        entry = {"readings": len(rows), "devices": len({r["device_id"] for r in rows})}
        for name in RANGES:
            values = [r[name] for r in rows]
            entry[f"{name}_mean"] = math.fsum(values) / len(values)
            entry[f"{name}_min"] = min(values)
            entry[f"{name}_max"] = max(values)
        stats[key] = entry
    return stats
