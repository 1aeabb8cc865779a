"""The two jobs' command lines, built once for both targets (Dataproc and the local Spark container).

The jobs' argument parser (jobs/hydrostream_jobs/cli.py, docs/jobs.md) defines the flags; this module
fills them from the stack model's `JobFlags` and the deployed endpoints. No secret travels here: the
InfluxDB token and each job's Kafka password are given as a file path (local) or a Secret Manager version
name (GCP), the jobs' own `TokenSource`, and the job reads the value itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from hydrostream_jobs import contract
from hydrostream_jobs.token import TokenSource


@dataclass(frozen=True)
class JobFlags:
    """The stack's values of the jobs' own flags (docs/jobs.md), the same on every target."""

    rate: int                   # producer: readings per second
    farms: int
    devices_per_farm: int
    trigger: str                # consumer: durations in the jobs' grammar (hydrostream_jobs.durations)
    window: str
    slide: str
    watermark: str
    read_cap: int               # consumer: Kafka offsets read per micro-batch at most
    freshness_objective: str    # consumer: readings in InfluxDB within this of their event time count on time


@dataclass(frozen=True)
class KafkaCredential:
    """A job's Kafka user and where its password is (never the password)."""

    user: str
    password: TokenSource


def token_flags(token: TokenSource) -> list[str]:
    """A secret's flag, named by its source's option: a file (local) or a Secret Manager version (GCP),
    exactly one."""
    if (token.file is None) == (token.secret is None):
        raise ValueError(f"a source of the {token.what} is a file or a Secret Manager version, not both or "
                         f"neither")
    if token.file is not None:
        return [f"{token.option}-file", token.file]
    return [f"{token.option}-secret", str(token.secret)]


def kafka_login(user: str, *, file: str | None = None, secret: str | None = None) -> KafkaCredential:
    """A job's Kafka user and where its password is: a file (local) or a Secret Manager version (GCP), as
    the jobs' --kafka-password-file/-secret take it."""
    return KafkaCredential(user, TokenSource(file=file, secret=secret, what="Kafka password",
                                             option="--kafka-password"))


def login_flags(login: KafkaCredential | None) -> list[str]:
    """A job's Kafka login flags (None: a broker that does not authenticate, as the plaintext test broker)."""
    if login is None:
        return []
    if login.password.option != "--kafka-password":
        raise ValueError(f"{login.user}'s password source must be a Kafka password (kafka_login)")
    return ["--kafka-user", login.user, *token_flags(login.password)]


def consumer_args(jobs: JobFlags, *, bootstrap_servers: str, influx_url: str, influx_org: str,
                  influx_bucket: str, token: TokenSource, checkpoint_root: str,
                  handover_root: str, kafka_login: KafkaCredential | None) -> list[str]:
    """consumer.py arguments: Kafka in, InfluxDB out, checkpoints and dead letters under `checkpoint_root`.

    `checkpoint_root` is the release's folder directly below `handover_root`, where every release has
    one: a new release's consumer starts where the one that ran last stood (docs/jobs.md, "Release
    handover"), not at the topic's earliest offset.
    """
    parent, _, release = checkpoint_root.rstrip("/").rpartition("/")
    if not release or parent != handover_root.rstrip("/"):
        raise ValueError(f"the consumer's checkpoint root {checkpoint_root} must be a release folder "
                         f"directly below the handover root {handover_root}")
    return [
        "--source", "kafka",
        "--bootstrap-servers", bootstrap_servers,
        "--topic", contract.READINGS_TOPIC,
        *login_flags(kafka_login),
        "--max-offsets-per-trigger", str(jobs.read_cap),
        "--sink", "influxdb",
        "--influx-url", influx_url,
        "--influx-org", influx_org,
        "--influx-bucket", influx_bucket,
        *token_flags(token),
        "--checkpoint-location", f"{checkpoint_root}/consumer",
        "--handover-from", handover_root,
        "--dead-letter-path", f"{checkpoint_root}/dead-letter",
        "--trigger", jobs.trigger,
        "--window", jobs.window,
        "--slide", jobs.slide,
        "--watermark", jobs.watermark,
        "--freshness-objective", jobs.freshness_objective,
        "--metrics-port", str(contract.CONSUMER_METRICS_PORT),
    ]


def producer_args(jobs: JobFlags, *, bootstrap_servers: str, checkpoint_root: str,
                  kafka_login: KafkaCredential | None) -> list[str]:
    """producer.py's arguments: simulated farms written to Kafka at the configured rate."""
    return [
        "--sink", "kafka",
        "--bootstrap-servers", bootstrap_servers,
        "--topic", contract.READINGS_TOPIC,
        *login_flags(kafka_login),
        "--rate", str(jobs.rate),
        "--farms", str(jobs.farms),
        "--devices-per-farm", str(jobs.devices_per_farm),
        "--checkpoint-location", f"{checkpoint_root}/producer",
        "--metrics-port", str(contract.PRODUCER_METRICS_PORT),
    ]
