"""Parsing and every validity rule of the contract, boundaries on both sides, on a batch DataFrame."""

from __future__ import annotations

import json
import math

import pytest
from hydrostream_jobs.consumer_job import classified_messages

from tests.jobs import oracle

VALID = {
    "farm_id": "farm-01",
    "zone": "bay-3",
    "device_id": "hp-0042",
    "ts": "2026-11-22T10:15:03.120Z",
    "ph": 5.94,
    "ec_ms_cm": 1.62,
    "water_temp_c": 19.8,
    "air_temp_c": 23.4,
    "humidity_pct": 71.2,
    "light_ppfd": 412.0,
    "dissolved_oxygen_mg_l": 7.1,
}
RANGES = {
    "ph": (0, 14),
    "ec_ms_cm": (0, 10),
    "water_temp_c": (0, 40),
    "air_temp_c": (-10, 50),
    "humidity_pct": (0, 100),
    "light_ppfd": (0, 2500),
    "dissolved_oxygen_mg_l": (0, 20),
}


def with_(**changes) -> bytes:
    reading = {**VALID, **changes}
    return json.dumps({k: v for k, v in reading.items() if v is not DROP}).encode()


DROP = object()


def classify(spark, messages: list[bytes | None]):
    frame = spark.createDataFrame([(m,) for m in messages], "value binary")
    return classified_messages(frame).collect()


def reasons(spark, messages):
    return [row.reason for row in classify(spark, messages)]


def test_a_valid_reading_parses_to_typed_columns(spark):
    [row] = classify(spark, [with_(ph=6)])
    assert row.reason is None and row.detail is None
    assert (row.farm_id, row.zone, row.device_id) == ("farm-01", "bay-3", "hp-0042")
    assert row.ph == 6.0 and isinstance(row.ph, float)
    # 2026-11-22T10:15:03Z = 1795342503 s since the epoch
    assert row.time_ns == 1_795_342_503_120_000_000


@pytest.mark.parametrize("name", list(RANGES))
def test_value_bounds_are_included_and_anything_beyond_is_out_of_range(spark, name):
    low, high = RANGES[name]
    messages = [
        with_(**{name: low}),
        with_(**{name: high}),
        with_(**{name: math.nextafter(low, -math.inf)}),
        with_(**{name: math.nextafter(high, math.inf)}),
    ]
    assert reasons(spark, messages) == [None, None, "out_of_range", "out_of_range"]


def test_wrong_types_missing_and_null_values(spark):
    messages = [
        with_(ph="5.9"),
        with_(ph=True),
        with_(ph=[5.9]),
        with_(ph={"v": 1}),
        with_(ph=None),
        with_(ph=DROP),
        with_(farm_id=7),
        with_(zone=False),
        with_(device_id=["a"]),
        with_(device_id={}),
        with_(farm_id=None),
        with_(zone=DROP),
        with_().replace(b"5.94", b"1e400"),
        with_(ph=10**30),
    ]
    assert reasons(spark, messages) == [
        "wrong_type",
        "wrong_type",
        "wrong_type",
        "wrong_type",
        "missing_field",
        "missing_field",
        "wrong_type",
        "wrong_type",
        "wrong_type",
        "wrong_type",
        "missing_field",
        "missing_field",
        "out_of_range",
        "out_of_range",
    ]


def test_ids_may_hold_separators_and_letters_but_not_control_characters(spark):
    messages = [
        with_(farm_id="farm, one = 1"),
        with_(zone="bäy ζ 3"),
        with_(device_id="7"),
        with_(device_id="true"),
        with_(farm_id=""),
        with_(zone="bay\n3"),
        with_(device_id="hp\x7f"),
        with_(device_id="hp\x85"),
        with_(device_id="a\\b"),
        with_(device_id="a\\"),
        with_(device_id="a\\ b"),
    ]
    assert reasons(spark, messages) == [
        None,
        None,
        None,
        None,
        "bad_id",
        "bad_id",
        "bad_id",
        "bad_id",
        None,
        "bad_id",
        "bad_id",
    ]


def test_timestamps_need_an_explicit_offset_and_keep_nanoseconds(spark):
    messages = [
        with_(ts="2026-11-22T10:15:03Z"),
        with_(ts="2026-11-22T10:15:03.123456789+05:30"),
        with_(ts="2026-11-22T10:15:03-00:00"),
        with_(ts="2026-11-22T10:15:03"),
        with_(ts="2026-11-22 10:15:03Z"),
        with_(ts="2026-02-30T10:15:03Z"),
        with_(ts="2026-11-22T10:15:03.1234567891Z"),
        with_(ts=1795342503),
        with_(ts="2300-01-01T00:00:00Z"),
        with_(ts=DROP),
    ]
    rows = classify(spark, messages)
    assert [r.reason for r in rows] == [
        None,
        None,
        None,
        "bad_timestamp",
        "bad_timestamp",
        "bad_timestamp",
        "bad_timestamp",
        "bad_timestamp",
        "bad_timestamp",
        "missing_field",
    ]
    assert rows[0].time_ns == 1_795_342_503_000_000_000
    assert rows[1].time_ns == (1_795_342_503 - 5 * 3600 - 30 * 60) * 10**9 + 123_456_789
    assert rows[2].time_ns == 1_795_342_503_000_000_000


def test_messages_that_are_not_json_objects(spark):
    messages = [
        None,
        b"",
        b"   ",
        b"{",
        b"[1, 2]",
        b"5",
        b"null",
        b'"text"',
        b"{'ph': 1}",
        with_()[:-1],
        with_().replace(b"5.94", b"NaN"),
        with_().replace(b"5.94", b"Infinity"),
        b"\xff\xfe{}",
        b"{}",
    ]
    assert reasons(spark, messages) == [
        "empty",
        "empty",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "malformed_json",
        "not_utf8",
        "missing_field",
    ]


def test_data_after_the_json_object_is_malformed(spark):
    messages = [
        with_() + b"  \r\n\t",
        with_() + b" x",
        with_() + b"]",
        with_() + b"}",
        with_() + b", 5]",
        with_() + b"," + with_(),
        with_() + with_(),
        with_() + b"\n" + with_(),
        with_() + b"\x00",
        with_() + b"\x0c",
        with_(extra={"nested": ["]", "}", {"a": []}]}),
        with_(note="} ]") + b" ]",
        with_(note="x").replace(b'"x"', '"r\u00e9sum\u00e9 \u2713"'.encode()),  # multibyte UTF-8
        with_(note="x").replace(b'"x"', '"\u2713"'.encode()) + b"}",
    ]
    rows = classify(spark, messages)
    assert [r.reason for r in rows] == [None] + ["malformed_json"] * 9 + [None, "malformed_json"] * 2
    assert {r.detail for r in rows if r.reason} == {"data after the JSON object"}


def test_extra_fields_are_ignored_and_details_name_the_field(spark):
    rows = classify(spark, [with_(extra={"nested": [1]}, note="x"), with_(humidity_pct=101)])
    assert rows[0].reason is None
    assert rows[1].detail == "humidity_pct=101.0 outside [0.0, 100.0]"


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-22T10:15:03Z",
        "2026-11-22T10:15:03.1Z",
        "2026-11-22T10:15:03.123456789Z",
        "2026-11-22T10:15:03+05:30",
        "2026-11-22T10:15:03.5-08:00",
        "1969-12-31T23:59:59.999999999+00:00",
        "2026-02-29T00:00:00Z",
        "2026-11-22T10:15:03+19:00",
        "2026-11-22T10:15:03.Z",
    ],
)
def test_event_time_of_every_timestamp_shape_matches_the_oracle(spark, ts):
    [row] = classify(spark, [with_(ts=ts)])
    expected = oracle.event_time_ns(ts)
    assert row.time_ns == expected
    assert row.reason == (None if expected is not None else "bad_timestamp")


def _projections(plan: str) -> list[str]:
    return [line.strip(" +-:") for line in plan.splitlines() if " Project [" in f" {line.strip(' +-:')}"]


def test_the_cheap_checks_run_with_generated_code_and_only_the_probe_chain_is_interpreted(spark):
    # from_json has no generated code: a projection holding it is interpreted whole, so the probes
    # that re-parse a message must stay out of the projection every message goes through.
    frame = spark.createDataFrame([(with_(),), (b"{}",)], "value binary")
    classified = classified_messages(frame)
    previous = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")
    try:
        classified.collect()
        plan = classified._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", previous)
    projections = _projections(plan)
    screen = [p for p in projections if "AS screened#" in p]
    assert len(screen) == 1 and screen[0].startswith("*("), screen
    assert "from_json" not in screen[0] and "json_array_length" not in screen[0]
    with_probes = [p for p in projections if "from_json" in p]
    assert len(with_probes) == 1 and "AS failed#" in with_probes[0], with_probes
    assert "AS screened#" not in with_probes[0]
