"""Quarantined messages as one JSON line each: raw message, reason code, detail and micro-batch id."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F


def dead_letter_record(batch_id: int) -> Column:
    """`{"raw", "reason", "detail", "batch_id"}` of a classified message, as JSON text."""
    return F.to_json(F.struct("raw", "reason", "detail", F.lit(batch_id).cast("long").alias("batch_id")))


def dead_letter_folder(dead_letter_path: str, batch_id: int) -> str:
    """Where one micro-batch's dead letters go; rewritten whole when Spark replays the batch."""
    return f"{dead_letter_path.rstrip('/')}/batch={batch_id}"
