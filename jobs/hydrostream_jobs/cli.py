"""Command lines of the consumer and producer jobs, parsed into typed, validated settings."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import datetime

from hydrostream_jobs import durations
from hydrostream_jobs.contract import CONSUMER_METRICS_PORT, PRODUCER_METRICS_PORT, READINGS_TOPIC
from hydrostream_jobs.handover import CheckpointLayout, HandoverError

AVAILABLE_NOW = "available-now"


def spark_interval(duration: str) -> str:
    """'5m' -> '5 minutes': the interval text Spark's window, watermark and trigger accept."""
    try:
        return durations.spark_interval(duration)
    except durations.DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _duration(value: str) -> str:
    try:
        return durations.check(value)
    except durations.DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _trigger(value: str) -> str:
    return value if value == AVAILABLE_NOW else spark_interval(value)


def _positive_int(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be a positive integer")
    return number


def _share(value: str) -> float:
    share = float(value)
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return share


def _instant(value: str) -> datetime:
    instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value} needs an explicit offset (Z or +hh:mm)")
    return instant


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"{value} must be true or false")
    return value == "true"


@dataclass(frozen=True)
class ConsumerArgs:
    """Everything the consumer job needs, validated."""

    source: str
    sink: str
    dead_letter_path: str
    checkpoint_location: str
    handover_from: str | None  # None: a fresh checkpoint starts at --starting-offsets
    trigger: str
    window: str
    slide: str
    watermark: str
    metrics_port: int
    bootstrap_servers: str | None
    topic: str
    kafka_user: str | None
    kafka_password_file: str | None
    kafka_password_secret: str | None
    starting_offsets: str
    max_offsets_per_trigger: int
    fail_on_data_loss: bool
    input_path: str | None
    max_files_per_trigger: int | None
    influx_url: str | None
    influx_org: str | None
    influx_bucket: str | None
    influx_token_file: str | None
    influx_token_secret: str | None
    influx_batch_lines: int
    influx_max_attempts: int
    influx_timeout_seconds: float
    freshness_objective: str
    master: str | None
    shuffle_partitions: int | None


@dataclass(frozen=True)
class ProducerArgs:
    """Everything the producer job needs, validated."""

    sink: str
    bootstrap_servers: str | None
    topic: str
    kafka_user: str | None
    kafka_password_file: str | None
    kafka_password_secret: str | None
    rate: int
    output_path: str | None
    count: int | None
    farms: int
    devices_per_farm: int
    zones_per_farm: int
    seed: int
    malformed_share: float
    fault_share: float
    start_time: datetime
    checkpoint_location: str | None
    metrics_port: int
    master: str | None
    send_timeout: int  # seconds


def _add_kafka_options(parser: argparse.ArgumentParser, selector: str, verb: str) -> None:
    """--bootstrap-servers and --topic, which both jobs take; `selector` is the option that picks Kafka."""
    parser.add_argument(
        "--bootstrap-servers",
        help=f"Kafka brokers, host:port[,host:port...]; required with {selector} kafka, no default",
    )
    parser.add_argument(
        "--topic", default=READINGS_TOPIC, help=f"Kafka topic to {verb} (default: %(default)s)"
    )
    parser.add_argument(
        "--kafka-user",
        help="Kafka user the job logs in as (SASL/SCRAM-SHA-512), with exactly one of --kafka-password-file, "
        "--kafka-password-secret; no default: without it the job does not authenticate (a broker without "
        "authentication)",
    )
    parser.add_argument(
        "--kafka-password-file",
        help="file holding --kafka-user's password (surrounding whitespace stripped); with --kafka-user "
        "exactly one of it and --kafka-password-secret, no default",
    )
    parser.add_argument(
        "--kafka-password-secret",
        help="Secret Manager version holding --kafka-user's password, projects/P/secrets/S/versions/V; with "
        "--kafka-user exactly one of it and --kafka-password-file, no default",
    )


def _check_kafka_login(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> None:
    """--kafka-user comes with exactly one password source, and a password source never without it."""
    sources = [bool(ns.kafka_password_file), bool(ns.kafka_password_secret)]
    if ns.kafka_user and sum(sources) != 1:
        parser.error("--kafka-user needs exactly one of --kafka-password-file, --kafka-password-secret")
    if not ns.kafka_user and any(sources):
        parser.error("--kafka-password-file and --kafka-password-secret need --kafka-user")


def _add_driver_options(parser: argparse.ArgumentParser, metrics_port: int) -> None:
    """--metrics-port and --master, which both jobs' drivers take."""
    parser.add_argument(
        "--metrics-port", type=int, default=metrics_port,
        help="port of the Prometheus endpoint, 0 disables (default: %(default)s)",
    )
    parser.add_argument(
        "--master",
        help="Spark master when not started by spark-submit, e.g. local[2] (no default: spark-submit's)",
    )


def consumer_parser() -> argparse.ArgumentParser:
    """The consumer's command line; every option's help says its meaning and its default (or why none)."""
    parser = argparse.ArgumentParser(prog="consumer.py", description="Validate, window, store readings.")
    parser.add_argument(
        "--source", choices=("kafka", "files"), required=True,
        help="where messages come from: kafka (needs --bootstrap-servers) or files (needs --input-path); "
        "required, no default",
    )
    _add_kafka_options(parser, "--source", "read")
    parser.add_argument(
        "--starting-offsets", default="earliest",
        help="Kafka: where a fresh checkpoint without a handover starts, earliest or latest; afterwards the "
        "checkpoint decides (default: %(default)s)",
    )
    parser.add_argument(
        "--max-offsets-per-trigger", type=_positive_int, default=100_000,
        help="Kafka: most messages one micro-batch reads (default: %(default)s)",
    )
    parser.add_argument(
        "--fail-on-data-loss", type=_bool, default="true",
        help="Kafka: true stops the query when offsets it was to read were deleted (default: %(default)s)",
    )
    parser.add_argument(
        "--input-path",
        help="folder of text files, one message per line; required with --source files, no default",
    )
    parser.add_argument(
        "--max-files-per-trigger", type=_positive_int,
        help="files: most new files one micro-batch reads (no default: every new file)",
    )
    parser.add_argument(
        "--sink", choices=("influxdb", "console", "noop"), required=True,
        help="where points go: influxdb (needs --influx-url, --influx-org, --influx-bucket and one token "
        "option), console (shows a few lines per batch) or noop (does all the work, discards the output); "
        "required, no default",
    )
    parser.add_argument(
        "--influx-url",
        help="InfluxDB base URL, e.g. http://influxdb:8086; required with --sink influxdb, no default",
    )
    parser.add_argument(
        "--influx-org", help="InfluxDB organization name; required with --sink influxdb, no default"
    )
    parser.add_argument("--influx-bucket", help="InfluxDB bucket; required with --sink influxdb, no default")
    parser.add_argument(
        "--influx-token-file",
        help="file holding the InfluxDB token (surrounding whitespace stripped); with --sink influxdb "
        "exactly one of it and --influx-token-secret, no default",
    )
    parser.add_argument(
        "--influx-token-secret",
        help="Secret Manager version holding the token, projects/P/secrets/S/versions/V; with --sink "
        "influxdb exactly one of it and --influx-token-file, no default",
    )
    parser.add_argument(
        "--influx-batch-lines", type=_positive_int, default=5000,
        help="most lines per InfluxDB write request (default: %(default)s)",
    )
    parser.add_argument(
        "--influx-max-attempts", type=_positive_int, default=8,
        help="attempts of one write request before the micro-batch fails (default: %(default)s)",
    )
    parser.add_argument(
        "--influx-timeout-seconds", type=float, default=30.0,
        help="timeout of one InfluxDB request, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--freshness-objective", type=_duration, default="1m",
        help="how soon after its event time a reading should be in InfluxDB: the readings written within it "
        "are counted (hydro_consumer_readings_on_time_total), the freshness SLI; a deployed stack passes its "
        "trigger plus 30s (default: %(default)s)",
    )
    parser.add_argument(
        "--dead-letter-path", required=True,
        help="folder of quarantined messages, one JSON line each under batch=<id>/; required, no default",
    )
    parser.add_argument(
        "--checkpoint-location", required=True,
        help="folder of the query's checkpoint (its subfolder consumer/); required, no default",
    )
    parser.add_argument(
        "--handover-from",
        help="Kafka: root of every release's checkpoint folder (<root>/<release>/...): a fresh checkpoint "
        "starts where the release that ran last stood, less one window and the watermark (no default: no "
        "handover, a fresh checkpoint starts at --starting-offsets)",
    )
    parser.add_argument(
        "--trigger", type=_trigger, default=AVAILABLE_NOW,
        help="available-now (read what is there in micro-batches, log a summary, stop) or a micro-batch "
        "interval like 30s (default: %(default)s)",
    )
    parser.add_argument(
        "--window", type=spark_interval, default="5m",
        help="length of the sliding windows (default: %(default)s)",
    )
    parser.add_argument(
        "--slide", type=spark_interval, default="1m",
        help="interval between window starts (default: %(default)s)",
    )
    parser.add_argument(
        "--watermark", type=spark_interval, default="10m",
        help="how late a reading may arrive and still count in its windows (default: %(default)s)",
    )
    _add_driver_options(parser, CONSUMER_METRICS_PORT)
    parser.add_argument(
        "--shuffle-partitions",
        type=_positive_int,
        help="spark.sql.shuffle.partitions of a new checkpoint (no default: the Spark conf's, else 2 x "
        "cores)",
    )
    return parser


def parse_consumer_args(argv: list[str]) -> ConsumerArgs:
    """Parse and cross-check the consumer's command line."""
    parser = consumer_parser()
    ns = parser.parse_args(argv)
    if ns.source == "kafka" and not ns.bootstrap_servers:
        parser.error("--source kafka needs --bootstrap-servers")
    if ns.source == "files" and not ns.input_path:
        parser.error("--source files needs --input-path")
    _check_kafka_login(parser, ns)
    if ns.sink == "influxdb":
        missing = [flag for flag in ("influx_url", "influx_org", "influx_bucket") if not getattr(ns, flag)]
        if missing:
            parser.error("--sink influxdb needs " + ", ".join("--" + m.replace("_", "-") for m in missing))
        if bool(ns.influx_token_file) == bool(ns.influx_token_secret):
            parser.error("--sink influxdb needs exactly one of --influx-token-file, --influx-token-secret")
    if ns.handover_from:
        try:
            CheckpointLayout.of(ns.handover_from, ns.checkpoint_location)
        except HandoverError as error:
            parser.error(f"--checkpoint-location, --handover-from: {error}")
    return ConsumerArgs(**vars(ns))


def producer_parser() -> argparse.ArgumentParser:
    """The producer's command line; every option's help says its meaning and its default (or why none)."""
    parser = argparse.ArgumentParser(prog="producer.py", description="Simulate hydroponic sensor readings.")
    parser.add_argument(
        "--sink", choices=("kafka", "files"), required=True,
        help="kafka (needs --bootstrap-servers; sends until stopped, or --count readings) or files (needs "
        "--output-path and --count); required, no default",
    )
    _add_kafka_options(parser, "--sink", "write")
    parser.add_argument(
        "--rate", type=_positive_int, default=500,
        help="readings per second: sent to Kafka until stopped, or the event-time spacing with --count "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--output-path", help="folder the text files are appended to; required with --sink files, no default"
    )
    parser.add_argument(
        "--count", type=_positive_int,
        help="readings to write, then stop; required with --sink files (no default: --sink kafka sends until "
        "stopped)",
    )
    parser.add_argument(
        "--farms", type=_positive_int, default=3, help="farms simulated (default: %(default)s)"
    )
    parser.add_argument(
        "--devices-per-farm", type=_positive_int, default=20,
        help="devices of each farm (default: %(default)s)",
    )
    parser.add_argument(
        "--zones-per-farm", type=_positive_int, default=4,
        help="zones of each farm, its devices spread over them (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="seed of every simulated value: same seed, same readings "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--malformed-share", type=_share, default=0.0,
        help="share of messages replaced by malformed ones (tests, demos), 0 to 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--fault-share", type=_share, default=0.001,
        help="share of readings with a sensor fault (out of range, quarantined), 0 to 1 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--start-time", type=_instant, default="2026-01-01T00:00:00Z",
        help="event time of the first reading with --count, ISO-8601 with an offset (default: %(default)s)",
    )
    parser.add_argument(
        "--checkpoint-location",
        help="endless --sink kafka only: the stream's checkpoint (no default: a fresh temporary folder)",
    )
    _add_driver_options(parser, PRODUCER_METRICS_PORT)
    parser.add_argument(
        "--send-timeout", type=_positive_int, default=DEFAULT_SEND_TIMEOUT_S,
        help="Kafka: seconds without an acknowledged write before the job fails, at least "
        f"{MIN_SEND_TIMEOUT_S} (default: %(default)s)",
    )
    return parser


# Kafka's own default delivery timeout; at least room for a request timeout and one retry within it
# (kafka.kafka_writer_options).
DEFAULT_SEND_TIMEOUT_S = 120
MIN_SEND_TIMEOUT_S = 5


def parse_producer_args(argv: list[str]) -> ProducerArgs:
    """Parse and cross-check the producer's command line."""
    parser = producer_parser()
    ns = parser.parse_args(argv)
    if ns.sink == "kafka" and not ns.bootstrap_servers:
        parser.error("--sink kafka needs --bootstrap-servers")
    if ns.sink == "files" and not (ns.output_path and ns.count):
        parser.error("--sink files needs --output-path and --count")
    _check_kafka_login(parser, ns)
    if ns.send_timeout < MIN_SEND_TIMEOUT_S:
        parser.error(f"--send-timeout must be at least {MIN_SEND_TIMEOUT_S} seconds, got {ns.send_timeout}")
    return ProducerArgs(**vars(ns))
