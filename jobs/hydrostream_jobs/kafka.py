"""Options of Spark's Kafka source and sink (the connector itself is on the cluster's classpath)."""

from __future__ import annotations


def kafka_reader_options(
    bootstrap_servers: str,
    topic: str,
    starting_offsets: str,
    max_offsets_per_trigger: int,
    fail_on_data_loss: bool,
    starting_timestamp_ms: int | None = None,
) -> dict[str, str]:
    """Source options: where a first run starts, how much one micro-batch takes, what lost data does.

    `startingOffsets` (or `startingTimestamp`, the release handover) applies only without a checkpoint;
    afterwards the checkpoint decides. `startingTimestamp` starts each partition at its first offset
    whose record timestamp is at or after it; a partition without one (no record since) starts at its
    latest offset instead of failing the query. `failOnDataLoss` true stops the query when offsets it
    still needed were deleted (retention): losing data is an incident, never silent.
    """
    if starting_timestamp_ms is not None and starting_timestamp_ms < 0:
        raise ValueError(f"startingTimestamp must be milliseconds since the epoch, "
                         f"got {starting_timestamp_ms}")
    start = (
        {"startingOffsets": starting_offsets}
        if starting_timestamp_ms is None
        else {"startingTimestamp": str(starting_timestamp_ms), "startingOffsetsByTimestampStrategy": "latest"}
    )
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "subscribe": topic,
        **start,
        "maxOffsetsPerTrigger": str(max_offsets_per_trigger),
        "failOnDataLoss": "true" if fail_on_data_loss else "false",
    }


def kafka_writer_options(bootstrap_servers: str, topic: str) -> dict[str, str]:
    """Sink options: acknowledged by all in-sync replicas, idempotent, small batching delay."""
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "topic": topic,
        "kafka.acks": "all",
        "kafka.enable.idempotence": "true",
        "kafka.linger.ms": "20",
    }
