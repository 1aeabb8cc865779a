"""Hypothesis throws hostile messages at the consumer's batch step: nothing crashes, nothing is lost."""

from __future__ import annotations

import base64
import glob
import json
import math

from hydrostream_jobs.consumer_job import ConsumerBatchWriter, classified_messages, message_rows
from hydrostream_jobs.metrics import ConsumerMetrics
from hydrostream_jobs.progress import BatchLog
from hydrostream_jobs.sink import InfluxTarget
from hydrostream_jobs.token import TokenSource
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.jobs import oracle

VALUE_NAMES = tuple(oracle.RANGES)
ID_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@st.composite
def timestamps(draw):
    if draw(st.booleans()):
        return draw(
            st.sampled_from(
                [
                    "",
                    "yesterday",
                    "2026-13-01T00:00:00Z",
                    "2026-01-01T00:00:00",
                    "2026-01-01T25:00:00Z",
                    "1e9",
                    "2026-01-01T00:00:00.1234567890Z",
                ]
            )
        )
    moment = draw(
        st.datetimes(
            min_value=__import__("datetime").datetime(1900, 1, 1),
            max_value=__import__("datetime").datetime(2200, 1, 1),
        )
    )
    offset = draw(st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", "+14:00"]))
    digits = draw(st.sampled_from(["", ".1", ".123", ".123456", ".123456789"]))
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + digits + offset


def numbers():
    return st.one_of(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-20, max_value=2600),
        st.integers(min_value=-5, max_value=3000),
        st.floats(min_value=1e300, max_value=1e308),
        st.integers(min_value=10**20, max_value=10**30),
    )


def wrong_values():
    return st.one_of(
        st.text(max_size=5),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
        st.none(),
    )


@st.composite
def readings(draw):
    message = {name: draw(st.one_of(ID_TEXT, ID_TEXT, ID_TEXT, wrong_values())) for name in oracle.IDS}
    message["ts"] = draw(timestamps())
    for name in VALUE_NAMES:
        message[name] = draw(st.one_of(numbers(), numbers(), numbers(), wrong_values()))
    for name in draw(st.lists(st.sampled_from(list(message)), max_size=2, unique=True)):
        del message[name]
    message.update(draw(st.dictionaries(st.sampled_from(["extra", "note", "z"]), st.integers(), max_size=2)))
    text = json.dumps(message, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8")


# After a message's JSON object: JSON whitespace (fine) or data (not fine, even another object).
TRAILERS = st.one_of(
    st.sampled_from([b" ", b"\n", b"\r\n\t ", b"]", b"}", b",", b", 5]", b"x", b"\x00", b"\x0c", b"{}"]),
    st.binary(min_size=1, max_size=6),
)


@st.composite
def hostile(draw):
    kind = draw(st.integers(0, 6))
    if kind == 0:
        return draw(st.binary(max_size=40))
    if kind == 1:
        whole = draw(readings())
        return whole[: draw(st.integers(0, len(whole)))]
    if kind == 2:
        return draw(readings()).replace(b"1", b"NaN", 1)
    if kind == 3:
        return draw(readings()).replace(b"2", b"Infinity", 1)
    if kind == 4:
        return draw(readings()) + draw(TRAILERS)
    return draw(readings())


def good_reading(i: int) -> bytes:
    return json.dumps(
        {
            "farm_id": f"farm {i % 2}",
            "zone": "bay=1",
            "device_id": f"d,{i}",
            "ts": f"2026-01-01T00:00:{i % 60:02d}Z",
            "ph": 6,
            "ec_ms_cm": 1.5,
            "water_temp_c": 20.0,
            "air_temp_c": -10,
            "humidity_pct": 100,
            "light_ppfd": 0,
            "dissolved_oxygen_mg_l": 8.25,
        }
    ).encode()


def received_bytes(record: dict) -> bytes:
    """The exact message bytes a dead letter stands for (base64 in `detail` when not UTF-8)."""
    if record["reason"] == "not_utf8":
        return base64.b64decode(record["detail"].rsplit(" ", 1)[-1])
    return record["raw"].encode("utf-8")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(messages=[b"\xed\xa0", b"\xff"], good=1)  # Java and Python render bad bytes differently
@example(messages=[good_reading(1) + b"]", good_reading(2) + b' {"ph": 7}', good_reading(3) + b"\n"], good=0)
@given(messages=st.lists(hostile(), min_size=1, max_size=20), good=st.integers(0, 3))
def test_every_message_is_written_or_quarantined_with_a_reason(spark, tmp_path_factory, influxdb, messages,
                                                                good):
    """Into the real InfluxDB: one bucket for the test, emptied before each example."""
    messages = messages + [good_reading(i) for i in range(good)]
    dead_letters = tmp_path_factory.mktemp("dlq")
    influxdb.empty()
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(influxdb.token)
    target = InfluxTarget(
        url=influxdb.url,
        org=influxdb.org,
        bucket=influxdb.bucket,
        token=TokenSource(file=str(token_file)),
        batch_lines=5000,
        max_attempts=1,
        timeout_seconds=30.0,
        freshness_objective_seconds=60.0,
    )
    frame = spark.createDataFrame([(m,) for m in messages], "value binary")
    ConsumerBatchWriter("influxdb", target, str(dead_letters), ConsumerMetrics(), BatchLog())(
        message_rows(classified_messages(frame)), 7
    )

    expected = [oracle.check(m) for m in messages]
    quarantined = []
    for path in glob.glob(f"{dead_letters}/batch=7/part-*"):
        with open(path, encoding="utf-8") as handle:
            quarantined += [json.loads(line) for line in handle]
    expected_bad = sorted(
        (m or b"", reason) for m, (reason, _) in zip(messages, expected, strict=True) if reason
    )
    assert sorted((received_bytes(q), q["reason"]) for q in quarantined) == expected_bad
    assert all(q["batch_id"] == 7 and q["detail"] for q in quarantined)

    expected_points = {}
    for reason, reading in expected:
        if reason is None:
            tags = tuple(sorted((name, reading[name]) for name in oracle.IDS))
            key = ("sensor_readings", tags, reading["time_ns"])
            expected_points[key] = {n: reading[n] for n in VALUE_NAMES}
    stored = influxdb.measurement("sensor_readings")
    assert stored.keys() == expected_points.keys()
    for key, fields in expected_points.items():
        assert stored[key] == fields
    assert all(not math.isnan(v) for fields in stored.values() for v in fields.values())
