"""Validity rules of the data contract: each parsed message gets a reason code, or none when valid."""

from __future__ import annotations

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
# The text Spark's StringType gives a non-string JSON value starts like this (only then probe the type).
_LOOKS_NON_STRING = r"^(-|[0-9]|true$|false$|Infinity$|NaN$|\[|\{)"
# Line protocol cannot express a backslash before a separator (or at the end) of a tag value.
_UNREPRESENTABLE_BACKSLASH = r"\\([,= \\]|$)"
# The only `}` of the message is its last character before JSON whitespace: nothing follows the object.
_ONE_CLOSING_BRACE_AT_THE_END = r"^[^}]*\}[ \t\r\n]*$"


def _j(name: str) -> Column:
    return F.col("j")[name]


def _id_checks(name: str) -> list[tuple[Column, str, Column]]:
    value = _j(name)
    return [
        (value.isNull(), MISSING_FIELD, F.lit(f"{name} is missing or null")),
        (
            value.rlike(_LOOKS_NON_STRING) & holds_non_string(name),
            WRONG_TYPE,
            F.lit(f"{name} must be a string"),
        ),
        (F.length(value) == 0, BAD_ID, F.lit(f"{name} is empty")),
        (value.rlike(r"\p{Cc}"), BAD_ID, F.lit(f"{name} holds a control character")),
        (
            value.rlike(_UNREPRESENTABLE_BACKSLASH),
            BAD_ID,
            F.lit(f"{name} has a backslash before a separator or at its end"),
        ),
    ]


def _time_checks() -> list[tuple[Column, str, Column]]:
    value = _j(TIME_FIELD)
    return [
        (value.isNull(), MISSING_FIELD, F.lit(f"{TIME_FIELD} is missing or null")),
        (
            ~value.rlike(TIMESTAMP_PATTERN),
            BAD_TIMESTAMP,
            F.lit(f"{TIME_FIELD} is not an ISO-8601 instant with an explicit offset"),
        ),
        (F.col("epoch_seconds").isNull(), BAD_TIMESTAMP, F.lit(f"{TIME_FIELD} is not a real instant")),
        (
            F.abs(F.col("epoch_seconds")) > MAX_ABS_EPOCH_SECONDS,
            BAD_TIMESTAMP,
            F.lit(f"{TIME_FIELD} is outside InfluxDB's time range"),
        ),
    ]


def _value_checks(name: str) -> list[tuple[Column, str, Column]]:
    value = _j(name)
    low, high = VALUE_RANGES[name]
    corrupt = _j(CORRUPT_COLUMN).isNotNull()
    return [
        (value.isNull() & corrupt & field_present(name), WRONG_TYPE, F.lit(f"{name} must be a JSON number")),
        (value.isNull(), MISSING_FIELD, F.lit(f"{name} is missing or null")),
        (
            ~((value >= low) & (value <= high)),
            OUT_OF_RANGE,
            F.format_string(f"{name}=%s outside [{low}, {high}]", value.cast("string")),
        ),
    ]


def _message_checks() -> list[tuple[Column, str, Column]]:
    return [
        (F.col("value_null") | (F.length("raw") == 0), EMPTY, F.lit("empty message")),
        (
            ~F.col("utf8_ok"),
            NOT_UTF8,
            F.concat(F.lit("not valid UTF-8; base64 of the bytes: "), "raw_base64"),
        ),
        (
            F.col("j").isNull() | (_j(CORRUPT_COLUMN).isNotNull() & ~syntax_ok()),
            MALFORMED_JSON,
            F.lit("not a JSON object"),
        ),
        (~_nothing_after_the_object(), MALFORMED_JSON, F.lit("data after the JSON object")),
    ]


def _nothing_after_the_object() -> Column:
    """True when no data follows the message's first JSON value (Spark's parser ignores such data).

    Fast path: a single `}`, at the end. Otherwise the message is parsed again wrapped in `[...]`
    (one element: the next token after the value is `]`) and, when it holds a `]` that could close
    that wrapper early, wrapped as `{"v": ...}` too (`]` there is a syntax error).
    """
    raw = F.col("raw")
    length = F.json_array_length(F.concat(F.lit("["), raw, F.lit("]")))  # null when not JSON
    one_array_element = F.coalesce(length == 1, F.lit(False))
    one_object_value = F.json_object_keys(F.concat(F.lit('{"v":'), raw, F.lit("}"))).isNotNull()
    return raw.rlike(_ONE_CLOSING_BRACE_AT_THE_END) | (
        one_array_element & ((F.instr(raw, "]") == 0) | one_object_value)
    )


def _first_failed(checks: list[tuple[Column, str, Column]]) -> Column:
    """1-based index of the first failing check, null when all pass.

    CASE WHEN evaluates conditions lazily and in order, so the re-parsing probes run only for rows
    that reach them (a rejected message's corrupt branch, an id that looks like a number).
    """
    expression = F.when(checks[0][0], 1)
    for index, (condition, _reason, _detail) in enumerate(checks[1:], start=2):
        expression = expression.when(condition, index)
    return expression


def _epoch_seconds() -> Column:
    whole_seconds = F.regexp_replace(_j(TIME_FIELD), r"\.[0-9]+", "")
    instant = F.try_to_timestamp(whole_seconds, F.lit("yyyy-MM-dd'T'HH:mm:ssXXX"))
    return F.when(_j(TIME_FIELD).rlike(TIMESTAMP_PATTERN), F.unix_seconds(instant))


def classify(parsed: DataFrame) -> DataFrame:
    """Add `reason` and `detail` (null when valid) and the typed reading columns to parsed messages.

    Plain projections (the parse below them is materialized once): a filter on this frame is pushed
    below them and re-runs the checks, so materialize it first (persist, or an exchange followed by
    a generator, as the consumer does).
    """
    with_seconds = parsed.withColumn("epoch_seconds", _epoch_seconds())
    checks = _message_checks()
    for name in ID_FIELDS:
        checks += _id_checks(name)
    checks += _time_checks()
    for name in VALUE_FIELDS:
        checks += _value_checks(name)
    fraction = F.rpad(F.regexp_extract(_j(TIME_FIELD), r"\.([0-9]+)", 1), 9, "0")
    valid_seconds = F.when(F.abs(F.col("epoch_seconds")) <= MAX_ABS_EPOCH_SECONDS, F.col("epoch_seconds"))
    # A projection of its own: the optimizer keeps an expensive column that is referenced several
    # times (reason, detail) in the projection below instead of inlining it into each reference.
    checked = with_seconds.select("*", _first_failed(checks).alias("failed"))
    failed = F.col("failed")
    detail = F.when(failed == 1, checks[0][2])
    for index, (_condition, _reason, text) in enumerate(checks[1:], start=2):
        detail = detail.when(failed == index, text)
    typed = checked.select(
        "raw",
        F.element_at(F.array(*[F.lit(reason) for _c, reason, _d in checks]), failed).alias("reason"),
        detail.alias("detail"),
        *[_j(name).alias(name) for name in ID_FIELDS],
        (valid_seconds * 1_000_000_000 + fraction.cast("long")).alias("time_ns"),
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
