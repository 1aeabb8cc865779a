"""Validity rules of the data contract: each parsed message gets a reason code, or none when valid."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from hydrostream_jobs.contract import ID_FIELDS, TIME_FIELD, VALUE_FIELDS, VALUE_RANGES
from hydrostream_jobs.schema import CORRUPT_COLUMN, field_present, holds_non_string, syntax_ok

# Reason codes, checked in this order; per field the fields are checked in contract order.
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
BAD_ID = "bad_id"
BAD_TIMESTAMP = "bad_timestamp"
OUT_OF_RANGE = "out_of_range"
REASONS = (EMPTY, NOT_UTF8, MALFORMED_JSON, MISSING_FIELD, WRONG_TYPE, BAD_ID, BAD_TIMESTAMP, OUT_OF_RANGE)

# ISO-8601 instant with an explicit offset, up to nanosecond digits.
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
# InfluxDB stores int64 nanoseconds: whole seconds must stay strictly inside +-9223372036.
MAX_ABS_EPOCH_SECONDS = 9_223_372_035
# Spark's StringType gives a non-string JSON value as its text, which starts with one of these
# (or is a literal below); only then is the message re-parsed to probe the type.
_NON_STRING_FIRST_CHARACTERS = ("-", *"0123456789", "[", "{")
_NON_STRING_LITERALS = ("true", "false", "Infinity", "NaN")
# Line protocol cannot express a backslash before a separator (or at the end) of a tag value.
_UNREPRESENTABLE_BACKSLASH = r"\\([,= \\]|$)"
# What an id check can object to; absent from all three ids (the rule), no id check fails.
_ID_SUSPECT_CHARACTERS = r"[\p{Cc}\\]"
# The only `}` of the message is its last character before JSON whitespace: nothing follows the object.
_ONE_CLOSING_BRACE_AT_THE_END = r"^[^}]*\}[ \t\r\n]*$"
# Columns computed once per message before the checks, which reference them several times.
_TS_SHAPE_OK = "ts_shape_ok"
_EPOCH_SECONDS = "epoch_seconds"
_IDS_SUSPECT = "ids_suspect"
_SCREENED = "screened"
_FAILED = "failed"


@dataclass(frozen=True)
class Check:
    """One rule: `fails` is true when a message breaks it (reason, detail say how).

    `may_fail` is a cheap condition that holds whenever `fails` does, for the rules whose `fails`
    re-parses the message (from_json has no generated code: one such expression in a projection
    makes Spark interpret the whole projection). None when `fails` is cheap itself.
    """

    fails: Column
    reason: str
    detail: Column
    may_fail: Column | None = None


def _j(name: str) -> Column:
    return F.col("j")[name]


def _looks_non_string(value: Column) -> Column:
    return F.substring(value, 1, 1).isin(*_NON_STRING_FIRST_CHARACTERS) | value.isin(*_NON_STRING_LITERALS)


def _id_checks(name: str) -> list[Check]:
    value = _j(name)
    suspect = F.col(_IDS_SUSPECT)
    looks_non_string = _looks_non_string(value)
    return [
        Check(value.isNull(), MISSING_FIELD, F.lit(f"{name} is missing or null")),
        Check(looks_non_string & holds_non_string(name), WRONG_TYPE, F.lit(f"{name} must be a string"),
              may_fail=looks_non_string),
        Check(value == "", BAD_ID, F.lit(f"{name} is empty")),
        Check(suspect & value.rlike(r"\p{Cc}"), BAD_ID, F.lit(f"{name} holds a control character")),
        Check(
            suspect & value.rlike(_UNREPRESENTABLE_BACKSLASH),
            BAD_ID,
            F.lit(f"{name} has a backslash before a separator or at its end"),
        ),
    ]


def _time_checks() -> list[Check]:
    value = _j(TIME_FIELD)
    seconds = F.col(_EPOCH_SECONDS)
    return [
        Check(value.isNull(), MISSING_FIELD, F.lit(f"{TIME_FIELD} is missing or null")),
        Check(
            ~F.col(_TS_SHAPE_OK),
            BAD_TIMESTAMP,
            F.lit(f"{TIME_FIELD} is not an ISO-8601 instant with an explicit offset"),
        ),
        Check(seconds.isNull(), BAD_TIMESTAMP, F.lit(f"{TIME_FIELD} is not a real instant")),
        Check(
            F.abs(seconds) > MAX_ABS_EPOCH_SECONDS,
            BAD_TIMESTAMP,
            F.lit(f"{TIME_FIELD} is outside InfluxDB's time range"),
        ),
    ]


def _value_checks(name: str) -> list[Check]:
    value = _j(name)
    low, high = VALUE_RANGES[name]
    null_in_a_corrupt_record = value.isNull() & _j(CORRUPT_COLUMN).isNotNull()
    return [
        Check(null_in_a_corrupt_record & field_present(name), WRONG_TYPE,
              F.lit(f"{name} must be a JSON number"), may_fail=null_in_a_corrupt_record),
        Check(value.isNull(), MISSING_FIELD, F.lit(f"{name} is missing or null")),
        Check(
            ~((value >= low) & (value <= high)),
            OUT_OF_RANGE,
            F.format_string(f"{name}=%s outside [{low}, {high}]", value.cast("string")),
        ),
    ]


def _message_checks() -> list[Check]:
    raw = F.col("raw")
    corrupt = _j(CORRUPT_COLUMN).isNotNull()
    # The first `}` is the last byte: none in the bytes before it. Sliced as bytes (character
    # positions count the message) and scanned by `contains`, which compares only where the first
    # byte matches (substring_index's search compares the delimiter at every position).
    before_last_byte = raw.cast("binary").substr(F.lit(1), F.octet_length(raw) - 1).cast("string")
    first_brace_last = raw.endswith("}") & ~before_last_byte.contains("}")
    one_brace_at_the_end = first_brace_last | raw.rlike(_ONE_CLOSING_BRACE_AT_THE_END)
    not_a_json_object = F.lit("not a JSON object")
    return [
        Check(F.col("value_null") | (raw == ""), EMPTY, F.lit("empty message")),
        Check(
            ~F.col("utf8_ok"),
            NOT_UTF8,
            F.concat(F.lit("not valid UTF-8; base64 of the bytes: "), "raw_base64"),
        ),
        Check(F.col("j").isNull(), MALFORMED_JSON, not_a_json_object),
        Check(corrupt & ~syntax_ok(), MALFORMED_JSON, not_a_json_object, may_fail=corrupt),
        Check(
            ~(one_brace_at_the_end | _nothing_after_the_object_probe()),
            MALFORMED_JSON,
            F.lit("data after the JSON object"),
            may_fail=~one_brace_at_the_end,
        ),
    ]


def _nothing_after_the_object_probe() -> Column:
    """True when no data follows the message's first JSON value (Spark's parser ignores such data).

    For messages whose only `}` is not the last: the message is parsed again wrapped in `[...]`
    (one element: the next token after the value is `]`) and, when it holds a `]` that could close
    that wrapper early, wrapped as `{"v": ...}` too (`]` there is a syntax error).
    """
    raw = F.col("raw")
    length = F.json_array_length(F.concat(F.lit("["), raw, F.lit("]")))  # null when not JSON
    one_array_element = F.coalesce(length == 1, F.lit(False))
    one_object_value = F.json_object_keys(F.concat(F.lit('{"v":'), raw, F.lit("}"))).isNotNull()
    return one_array_element & (~raw.contains("]") | one_object_value)


def _first_failed(conditions: list[Column], needs_probe: list[bool] | None = None) -> Column:
    """1-based index of the first true condition, null when none is; negated where `needs_probe`.

    CASE WHEN evaluates conditions lazily and in order, so a condition runs only for rows that
    reach it.
    """
    flags = needs_probe or [False] * len(conditions)
    expression = None
    for index, (condition, probe) in enumerate(zip(conditions, flags, strict=True), start=1):
        value = -index if probe else index
        expression = F.when(condition, value) if expression is None else expression.when(condition, value)
    return expression


def _epoch_seconds() -> Column:
    """Whole seconds since the epoch of a `ts` of the right shape (null otherwise, or not a real instant)."""
    ts = _j(TIME_FIELD)
    # The shape is fixed: 19 characters of date and time, an optional fraction, then the offset.
    offset = F.when(ts.endswith("Z"), F.lit("Z")).otherwise(F.substring(ts, -6, 6))
    instant = F.try_to_timestamp(F.concat(F.substring(ts, 1, 19), offset), F.lit("yyyy-MM-dd'T'HH:mm:ssXXX"))
    return F.when(F.col(_TS_SHAPE_OK), F.unix_seconds(instant))


def _fraction_ns() -> Column:
    """The nanoseconds of a `ts` of the right shape: the digits between the seconds and the offset."""
    ts = _j(TIME_FIELD)
    offset_length = F.when(ts.endswith("Z"), 1).otherwise(6)
    digits = ts.substr(F.lit(21), F.length(ts) - 20 - offset_length)
    return F.rpad(digits, 9, "0").cast("long")


def classify(parsed: DataFrame) -> DataFrame:
    """Add `reason` and `detail` (null when valid) and the typed reading columns to parsed messages.

    Three projections, each kept apart by the optimizer because the next references its expensive
    column more than once: a screen with generated code runs every cheap check (and each re-parsing
    check's cheap `may_fail`); only a message the screen sends to a re-parsing check goes through
    the whole chain (interpreted); then reason, detail and typed columns.
    A filter on this frame is pushed below them and re-runs the checks, so materialize it first
    (persist, or an exchange followed by a generator, as the consumer does).
    """
    ids_text = F.concat_ws("", *[_j(name) for name in ID_FIELDS])
    shaped = parsed.select(
        "*",
        _j(TIME_FIELD).rlike(TIMESTAMP_PATTERN).alias(_TS_SHAPE_OK),
        ids_text.rlike(_ID_SUSPECT_CHARACTERS).alias(_IDS_SUSPECT),
    )
    with_seconds = shaped.select("*", _epoch_seconds().alias(_EPOCH_SECONDS))
    checks = _message_checks()
    for name in ID_FIELDS:
        checks += _id_checks(name)
    checks += _time_checks()
    for name in VALUE_FIELDS:
        checks += _value_checks(name)
    screen = _first_failed([c.fails if c.may_fail is None else c.may_fail for c in checks],
                           [c.may_fail is not None for c in checks])
    screened = with_seconds.select("*", screen.alias(_SCREENED))
    screened_index = F.col(_SCREENED)
    exact = F.when(screened_index < 0, _first_failed([c.fails for c in checks])).otherwise(screened_index)
    checked = screened.select("*", exact.alias(_FAILED))
    failed = F.col(_FAILED)
    detail = F.when(failed == 1, checks[0].detail)
    for index, check in enumerate(checks[1:], start=2):
        detail = detail.when(failed == index, check.detail)
    valid_seconds = F.when(F.abs(F.col(_EPOCH_SECONDS)) <= MAX_ABS_EPOCH_SECONDS, F.col(_EPOCH_SECONDS))
    typed = checked.select(
        "raw",
        F.element_at(F.array(*[F.lit(c.reason) for c in checks]), failed).alias("reason"),
        detail.alias("detail"),
        *[_j(name).alias(name) for name in ID_FIELDS],
        (valid_seconds * 1_000_000_000 + _fraction_ns()).alias("time_ns"),
        *[_j(name).alias(name) for name in VALUE_FIELDS],
    )
    return typed.select(
        "raw", "reason", "detail", *ID_FIELDS, event_time("time_ns"), "time_ns", *VALUE_FIELDS
    )


def event_time(time_ns: str) -> Column:
    """`event_time`: the microsecond timestamp (rounded down) of column `time_ns` (ns since the epoch)."""
    return F.expr(f"timestamp_micros(({time_ns} - pmod({time_ns}, 1000)) div 1000)").alias("event_time")


def valid_readings(classified: DataFrame) -> DataFrame:
    """Only the valid readings, with their typed columns."""
    return classified.filter(F.col("reason").isNull()).drop("raw", "reason", "detail")
