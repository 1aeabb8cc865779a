"""Options of Spark's Kafka source and sink (the connector itself is on the cluster's classpath)."""

from __future__ import annotations


def kafka_reader_options(
    bootstrap_servers: str,
    topic: str,
    starting_offsets: str,
    max_offsets_per_trigger: int,
    fail_on_data_loss: bool,
) -> dict[str, str]:
    """Source options: where a first run starts, how much one micro-batch takes, what lost data does.

    `startingOffsets` applies only without a checkpoint; afterwards the checkpoint decides.
    `failOnDataLoss` true stops the query when offsets it still needed were deleted (retention):
    losing data is an incident, never silent.
    """
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "subscribe": topic,
        "startingOffsets": starting_offsets,
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
