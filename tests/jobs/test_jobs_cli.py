"""Job command lines as docs/jobs.md fixes them, and the Kafka options the consumer and producer pass."""

import os
import re
import subprocess
import sys

import pytest
from hydrostream_jobs.cli import consumer_parser, parse_consumer_args, parse_producer_args, producer_parser
from hydrostream_jobs.kafka import KafkaLogin, kafka_reader_options, kafka_writer_options, read_login
from hydrostream_jobs.token import TokenError

COMMON = ["--dead-letter-path", "/dl", "--checkpoint-location", "/ck"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def help_by_option(entry: str) -> dict[str, str]:
    """`jobs/<entry> --help` as a user runs it, split into each option's text (flag line and help)."""
    # A fixed, wide terminal: argparse wraps at hyphens, which would split `available-now`.
    done = subprocess.run([sys.executable, os.path.join(ROOT, "jobs", entry), "--help"],
                          env={**os.environ, "COLUMNS": "400"}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    options = done.stdout.split("\noptions:\n", 1)[1]
    blocks = re.split(r"\n(?=  -)", "\n" + options)
    return {block.split()[0].rstrip(","): " ".join(block.split()) for block in blocks if block.strip()}


@pytest.mark.parametrize(
    ("entry", "parser"), [("consumer.py", consumer_parser), ("producer.py", producer_parser)]
)
def test_help_explains_every_option_and_names_its_default_or_why_it_has_none(entry, parser):
    shown = help_by_option(entry)
    options = [action for action in parser()._actions if action.option_strings != ["-h", "--help"]]
    assert len(options) >= 17
    for action in options:
        flag = action.option_strings[0]
        text = shown[flag].removeprefix(flag)
        assert len(text.split()) >= 5, f"{flag} has no help: {text!r}"
        if action.default is None:
            assert "no default" in text, f"{flag}: {text}"
        else:
            assert f"(default: {action.default})" in text, f"{flag}: {text}"
    for action in options:
        if action.required:
            assert "required" in shown[action.option_strings[0]]


def test_help_shows_the_designs_defaults_and_which_options_go_together():
    consumer, producer = help_by_option("consumer.py"), help_by_option("producer.py")
    # DESIGN.md, "Job command lines".
    for flag, default in (("--window", "5m"), ("--slide", "1m"), ("--watermark", "10m"),
                          ("--metrics-port", "8001"), ("--topic", "hydro.readings"),
                          ("--trigger", "available-now")):
        assert f"(default: {default})" in consumer[flag], consumer[flag]
    for flag, default in (("--rate", "500"), ("--farms", "3"), ("--zones-per-farm", "4"),
                          ("--devices-per-farm", "20"), ("--seed", "7"), ("--metrics-port", "8000"),
                          ("--send-timeout", "120")):
        assert f"(default: {default})" in producer[flag], producer[flag]
    for flag in ("--influx-url", "--influx-org", "--influx-bucket"):
        assert "required with --sink influxdb" in consumer[flag]
    assert "required with --source kafka" in consumer["--bootstrap-servers"]
    assert "required with --source files" in consumer["--input-path"]
    assert "exactly one of it and --influx-token-secret" in consumer["--influx-token-file"]
    assert "required with --sink kafka" in producer["--bootstrap-servers"]
    for flag in ("--output-path", "--count"):
        assert "required with --sink files" in producer[flag]


def test_consumer_defaults_follow_the_design():
    args = parse_consumer_args(
        ["--source", "kafka", "--bootstrap-servers", "h:9092", "--sink", "noop", *COMMON]
    )
    # 5m / 1m / 10m, spelled as Spark interval strings.
    assert (args.topic, args.window, args.slide, args.watermark) == (
        "hydro.readings", "5 minutes", "1 minutes", "10 minutes"
    )
    assert args.metrics_port == 8001
    assert args.starting_offsets == "earliest"
    assert args.fail_on_data_loss is True


def test_producer_defaults_follow_the_design():
    args = parse_producer_args(["--sink", "files", "--output-path", "/out", "--count", "10"])
    defaults = (args.rate, args.farms, args.devices_per_farm, args.seed, args.metrics_port)
    assert defaults == (500, 3, 20, 7, 8000)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--source", "kafka", "--sink", "noop", *COMMON], "--bootstrap-servers"),
        (["--source", "files", "--sink", "noop", *COMMON], "--input-path"),
        (["--source", "files", "--input-path", "/in", "--sink", "influxdb", *COMMON], "--influx-url"),
        (["--source", "files", "--input-path", "/in", "--sink", "noop", "--trigger", "soon", *COMMON],
         "soon"),
    ],
)
def test_consumer_rejects_bad_command_lines_naming_what_is_wrong(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_consumer_args(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_influx_sink_needs_exactly_one_token_source(capsys):
    argv = ["--source", "files", "--input-path", "/in", "--sink", "influxdb", "--influx-url", "http://x",
            "--influx-org", "o", "--influx-bucket", "b", "--influx-token-file", "/t",
            "--influx-token-secret", "projects/p/secrets/s/versions/1", *COMMON]
    with pytest.raises(SystemExit):
        parse_consumer_args(argv)
    assert "exactly one" in capsys.readouterr().err


def test_kafka_reader_options_are_set_deliberately():
    options = kafka_reader_options("h:9092", "hydro.readings", "earliest", 1000, True)
    assert options == {
        "kafka.bootstrap.servers": "h:9092",
        "subscribe": "hydro.readings",
        "startingOffsets": "earliest",
        "maxOffsetsPerTrigger": "1000",
        "failOnDataLoss": "true",
    }
    assert kafka_reader_options("h:9092", "t", "latest", 5, False)["failOnDataLoss"] == "false"


def test_kafka_writer_waits_for_all_replicas_and_is_idempotent():
    options = kafka_writer_options("h:9092", "hydro.readings", 120_000)
    assert options["kafka.acks"] == "all"
    assert options["kafka.enable.idempotence"] == "true"
    assert options["topic"] == "hydro.readings"


def test_kafka_writer_is_bounded_by_the_send_timeout_within_the_clients_rules():
    default = kafka_writer_options("h:9092", "t", 120_000)
    assert (default["kafka.delivery.timeout.ms"], default["kafka.max.block.ms"]) == ("120000", "120000")
    assert default["kafka.request.timeout.ms"] == "30000"  # Kafka's default fits
    short = kafka_writer_options("h:9092", "t", 10_000)
    # Kafka's client refuses delivery.timeout.ms < linger.ms + request.timeout.ms: (10000 - 20) / 2 fits.
    assert short["kafka.request.timeout.ms"] == "4990"
    assert int(short["kafka.linger.ms"]) + 4990 <= 10_000
    with pytest.raises(ValueError, match="at least 1000 ms, got 999"):
        kafka_writer_options("h:9092", "t", 999)


def test_producer_send_timeout_defaults_to_kafkas_delivery_timeout_and_refuses_a_tiny_one(capsys):
    base = ["--sink", "kafka", "--bootstrap-servers", "h:9092"]
    assert parse_producer_args(base).send_timeout == 120
    assert parse_producer_args([*base, "--send-timeout", "15"]).send_timeout == 15
    with pytest.raises(SystemExit):
        parse_producer_args([*base, "--send-timeout", "4"])
    assert "--send-timeout must be at least 5 seconds, got 4" in capsys.readouterr().err


KAFKA_CONSUMER = ["--source", "kafka", "--bootstrap-servers", "h:9092", "--sink", "noop", *COMMON]
KAFKA_PRODUCER = ["--sink", "kafka", "--bootstrap-servers", "h:9092"]


@pytest.mark.parametrize(("parse", "base"), [(parse_consumer_args, KAFKA_CONSUMER),
                                             (parse_producer_args, KAFKA_PRODUCER)])
@pytest.mark.parametrize(("login", "named"), [
    (["--kafka-user", "u"],
     "--kafka-user needs exactly one of --kafka-password-file, --kafka-password-secret"),
    (["--kafka-user", "u", "--kafka-password-file", "/p", "--kafka-password-secret",
      "projects/p/secrets/s/versions/1"], "exactly one of"),
    (["--kafka-password-file", "/p"], "need --kafka-user"),
])
def test_a_kafka_login_is_a_user_and_exactly_one_password_source(parse, base, login, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse([*base, *login])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_a_kafka_login_is_read_from_its_file_and_becomes_scram_options(tmp_path):
    password = tmp_path / "password"
    password.write_text("  s3cretPassw0rd\n")
    args = parse_producer_args([*KAFKA_PRODUCER, "--kafka-user", "hydro-producer",
                                "--kafka-password-file", str(password)])
    login = read_login(args.kafka_user, args.kafka_password_file, args.kafka_password_secret)
    assert (login.user, login.password) == ("hydro-producer", "s3cretPassw0rd")
    assert "s3cretPassw0rd" not in repr(login)
    expected = {
        "kafka.security.protocol": "SASL_PLAINTEXT",
        "kafka.sasl.mechanism": "SCRAM-SHA-512",
        "kafka.sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                  'username="hydro-producer" password="s3cretPassw0rd";',
    }
    writer = kafka_writer_options("h:9092", "t", 120_000, login)
    reader = kafka_reader_options("h:9092", "t", "latest", 5, True, login=login)
    assert {k: writer[k] for k in expected} == expected == {k: reader[k] for k in expected}
    # Without a login: no SASL option at all (a broker without authentication).
    assert not {k for k in kafka_writer_options("h:9092", "t", 120_000) if "sasl" in k or "security" in k}
    assert read_login(None, None, None) is None


@pytest.mark.parametrize("password", ['pa"ss', "pa\\ss", "pa;ss", ""])
def test_a_password_that_would_break_the_jaas_line_is_refused_without_showing_it(password):
    with pytest.raises(ValueError) as error:
        KafkaLogin("hydro-consumer", password)
    assert "hydro-consumer" in str(error.value)
    assert not password or password not in str(error.value)


def test_a_missing_password_file_names_the_kafka_password(tmp_path):
    with pytest.raises(TokenError, match="cannot read Kafka password file"):
        read_login("hydro-consumer", str(tmp_path / "absent"), None)
