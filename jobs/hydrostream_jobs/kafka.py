"""Options of Spark's Kafka source and sink (the connector itself is on the cluster's classpath).

A broker of the stacks authenticates every client with SASL/SCRAM-SHA-512 (infra/services/kafka.py); a
job logs in as its own user (`KafkaLogin`), whose password it read from a file or Secret Manager. The
password reaches Kafka's client only through `kafka.sasl.jaas.config`, an option Spark redacts in its
logs and UI (its `spark.redaction.regex` matches the value's `password=`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hydrostream_jobs.token import TokenSource, read_token

SASL_MECHANISM = "SCRAM-SHA-512"
SCRAM_LOGIN_MODULE = "org.apache.kafka.common.security.scram.ScramLoginModule"
# A JAAS option value is a double-quoted string: these would end or escape it.
_NOT_IN_JAAS_VALUE = ('"', "\\", "\n", "\r", ";")


@dataclass(frozen=True)
class KafkaLogin:
    """A Kafka user and its password (never printed: `repr` leaves it out)."""

    user: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        for what, value in (("user", self.user), ("password", self.password)):
            if not value or any(c in value for c in _NOT_IN_JAAS_VALUE):
                raise ValueError(f"the Kafka {what} of user {self.user!r} must be non-empty without quotes, "
                                 f"backslashes, semicolons or line breaks")


def read_login(user: str | None, password_file: str | None, password_secret: str | None) -> KafkaLogin | None:
    """The job's Kafka login from its command line (--kafka-user and its password's file or secret)."""
    if user is None:
        return None
    source = TokenSource(file=password_file, secret=password_secret, what="Kafka password",
                         option="--kafka-password")
    return KafkaLogin(user, read_token(source))


def sasl_options(login: KafkaLogin | None) -> dict[str, str]:
    """The client options that log in as `login` over SASL/SCRAM (None: a broker without authentication)."""
    if login is None:
        return {}
    return {
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": SASL_MECHANISM,
        "kafka.sasl.jaas.config":
            f'{SCRAM_LOGIN_MODULE} required username="{login.user}" password="{login.password}";',
    }


def kafka_reader_options(
    bootstrap_servers: str,
    topic: str,
    starting_offsets: str,
    max_offsets_per_trigger: int,
    fail_on_data_loss: bool,
    starting_timestamp_ms: int | None = None,
    login: KafkaLogin | None = None,
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
        **sasl_options(login),
    }


LINGER_MS = 20
# Kafka's default; a shorter send timeout shortens it so one retry still fits in the delivery timeout.
REQUEST_TIMEOUT_MS = 30_000


def kafka_writer_options(
    bootstrap_servers: str, topic: str, send_timeout_ms: int, login: KafkaLogin | None = None
) -> dict[str, str]:
    """Sink options: acknowledged by all in-sync replicas, idempotent, bounded in time.

    `delivery.timeout.ms` (a record not acknowledged by then fails its write) and `max.block.ms` (a
    send waiting for metadata) are the send timeout. They bound what Kafka's client bounds; its wait
    for an idempotent producer id (no KRaft quorum, e.g. two brokers of three down) has no timeout,
    which the producer job's watchdog covers (producer_job.SendWatchdog).
    """
    if send_timeout_ms < 1000:
        raise ValueError(f"the send timeout must be at least 1000 ms, got {send_timeout_ms}")
    # The client refuses delivery.timeout.ms < linger.ms + request.timeout.ms.
    request_timeout_ms = min(REQUEST_TIMEOUT_MS, (send_timeout_ms - LINGER_MS) // 2)
    return {
        "kafka.bootstrap.servers": bootstrap_servers,
        "topic": topic,
        "kafka.acks": "all",
        "kafka.enable.idempotence": "true",
        "kafka.linger.ms": str(LINGER_MS),
        "kafka.request.timeout.ms": str(request_timeout_ms),
        "kafka.delivery.timeout.ms": str(send_timeout_ms),
        "kafka.max.block.ms": str(send_timeout_ms),
        **sasl_options(login),
    }
