"""The reading's Spark schema and the one-pass parse of raw message bytes into a struct."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from hydrostream_jobs.contract import ID_FIELDS, TIME_FIELD, VALUE_FIELDS

CORRUPT_COLUMN = "_corrupt_record"

# Strict JSON: no NaN/Infinity tokens, no single quotes, no comments; a record that breaks a rule,
# or whose value has the wrong JSON type, lands in CORRUPT_COLUMN (the other fields still parse).
JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": CORRUPT_COLUMN,
    "allowNonNumericNumbers": "false",
    "allowSingleQuotes": "false",
    "allowComments": "false",
    "allowUnquotedFieldNames": "false",
    "allowNumericLeadingZeros": "false",
    "allowBackslashEscapingAnyCharacter": "false",
    "allowUnquotedControlChars": "false",
}

READING_SCHEMA = T.StructType(
    [T.StructField(name, T.StringType()) for name in (*ID_FIELDS, TIME_FIELD)]
    + [T.StructField(name, T.DoubleType()) for name in VALUE_FIELDS]
    + [T.StructField(CORRUPT_COLUMN, T.StringType())]
)

# Every field as a string accepts any JSON type: only syntax errors reach its corrupt column.
PRESENCE_SCHEMA = T.StructType([T.StructField(f.name, T.StringType()) for f in READING_SCHEMA.fields])

# For each non-string JSON type, a schema that accepts only that type (with allowNonNumericNumbers off).
NON_STRING_TYPES = (
    T.DoubleType(),
    T.BooleanType(),
    T.ArrayType(T.StringType()),
    T.MapType(T.StringType(), T.StringType()),
)


def decode_messages(messages: DataFrame) -> DataFrame:
    """Binary `value` -> `raw` (UTF-8, U+FFFD for bad bytes), `utf8_ok`, and base64 of bad messages."""
    decoded = F.decode(F.col("value"), "UTF-8")
    # Decoding only replaces bad bytes with U+FFFD, so only messages holding one need the re-encode check.
    utf8_ok = ~decoded.contains("\ufffd") | (F.encode(decoded, "UTF-8") == F.col("value"))
    return messages.select(
        decoded.alias("raw"),
        F.col("value").isNull().alias("value_null"),
        utf8_ok.alias("utf8_ok"),
        F.when(~utf8_ok, F.base64("value")).alias("raw_base64"),
    )


def parse_readings(decoded: DataFrame) -> DataFrame:
    """Add `j`, the reading parsed once with READING_SCHEMA.

    `inline(array(from_json(...)))` materializes the parse as a generator's output, so a later
    filter cannot be pushed below it and re-run from_json once per referenced field.
    """
    parsed_struct = F.struct(
        F.col("raw"),
        F.col("value_null"),
        F.col("utf8_ok"),
        F.col("raw_base64"),
        F.from_json(F.col("raw"), READING_SCHEMA, JSON_OPTIONS).alias("j"),
    )
    return decoded.select(F.inline(F.array(parsed_struct)))


def field_present(name: str) -> Column:
    """True when the message holds `name` with a non-null value of any JSON type (re-parses: use lazily)."""
    return F.from_json(F.col("raw"), PRESENCE_SCHEMA, JSON_OPTIONS)[name].isNotNull()


def syntax_ok() -> Column:
    """True when the message is a JSON object, whatever its fields' types (re-parses: use lazily)."""
    presence = F.from_json(F.col("raw"), PRESENCE_SCHEMA, JSON_OPTIONS)
    return presence.isNotNull() & presence[CORRUPT_COLUMN].isNull()


def holds_non_string(name: str) -> Column:
    """True when field `name` holds a JSON number, boolean, array or object (re-parses: use lazily)."""
    probes = [
        F.from_json(F.col("raw"), T.StructType([T.StructField(name, kind)]), JSON_OPTIONS)[name].isNotNull()
        for kind in NON_STRING_TYPES
    ]
    result = probes[0]
    for probe in probes[1:]:
        result = result | probe
    return result
