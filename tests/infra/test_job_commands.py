"""The infra-built command lines are accepted by the jobs' own parsers and carry the stack's settings."""

import pytest
from hydrostream_jobs import cli, contract
from hydrostream_jobs.token import TokenSource

from infra.job_commands import (
    JobFlags,
    KafkaCredential,
    consumer_args,
    kafka_login,
    producer_args,
    token_flags,
)

JOBS = JobFlags(rate=750, farms=4, devices_per_farm=25, trigger="45s", window="10m", slide="2m",
                watermark="15m", read_cap=5000, freshness_objective="75s")
CONSUMER_LOGIN = kafka_login("hydro-consumer", secret="projects/p/secrets/kafka-password/versions/latest")


def test_consumer_command_line_parses_with_the_jobs_parser():
    argv = consumer_args(JOBS, bootstrap_servers="10.0.0.5:9092", influx_url="http://10.0.0.6:8086",
                         influx_org="hydro", influx_bucket="readings",
                         token=TokenSource(secret="projects/p/secrets/influxdb-token/versions/latest"),
                         checkpoint_root="gs://ckpt/abc", handover_root="gs://ckpt",
                         kafka_login=CONSUMER_LOGIN)
    args = cli.parse_consumer_args(argv)
    assert args.kafka_user == "hydro-consumer"
    assert args.kafka_password_secret == "projects/p/secrets/kafka-password/versions/latest"
    assert args.kafka_password_file is None
    assert (args.source, args.sink, args.bootstrap_servers) == ("kafka", "influxdb", "10.0.0.5:9092")
    assert args.topic == contract.READINGS_TOPIC
    assert args.influx_url == "http://10.0.0.6:8086"
    assert (args.influx_org, args.influx_bucket) == ("hydro", "readings")
    assert args.influx_token_secret == "projects/p/secrets/influxdb-token/versions/latest"
    assert args.influx_token_file is None
    assert args.checkpoint_location == "gs://ckpt/abc/consumer"
    assert args.dead_letter_path == "gs://ckpt/abc/dead-letter"
    assert args.handover_from == "gs://ckpt"
    assert (args.window, args.slide, args.watermark) == ("10 minutes", "2 minutes", "15 minutes")
    assert args.max_offsets_per_trigger == 5000
    assert args.freshness_objective == "75s"
    assert args.metrics_port == 8001


def test_the_consumer_hands_over_from_the_folder_holding_every_release():
    common = dict(bootstrap_servers="kafka:9092", influx_url="http://influxdb:8086", influx_org="hydro",
                  influx_bucket="hydro", token=TokenSource(file="/run/secrets/t"), kafka_login=None)
    argv = consumer_args(JOBS, **common, checkpoint_root="/var/ckpt/r1", handover_root="/var/ckpt/")
    args = cli.parse_consumer_args(argv)
    assert (args.handover_from, args.checkpoint_location) == ("/var/ckpt/", "/var/ckpt/r1/consumer")
    # Another release's checkpoint would be <root>/<release>/consumer: not found from a deeper or other root.
    for checkpoint_root, handover_root in (("/var/ckpt/r1", "/var"), ("/var/ckpt", "/var/ckpt"),
                                           ("/other/r1", "/var/ckpt")):
        with pytest.raises(ValueError, match=f"{checkpoint_root} must be a release folder directly below"):
            consumer_args(JOBS, **common, checkpoint_root=checkpoint_root, handover_root=handover_root)


def test_producer_command_line_parses_with_the_jobs_parser():
    login = kafka_login("hydro-producer", file="/run/secrets/p")
    argv = producer_args(JOBS, bootstrap_servers="kafka:9092", checkpoint_root="/ckpt", kafka_login=login)
    args = cli.parse_producer_args(argv)
    assert (args.kafka_user, args.kafka_password_file, args.kafka_password_secret) == (
        "hydro-producer", "/run/secrets/p", None)
    assert (args.sink, args.bootstrap_servers, args.topic) == ("kafka", "kafka:9092", contract.READINGS_TOPIC)
    assert (args.rate, args.farms, args.devices_per_farm) == (750, 4, 25)
    assert args.checkpoint_location == "/ckpt/producer"
    assert args.metrics_port == 8000


def test_token_source_is_exactly_one_of_file_or_secret():
    assert token_flags(TokenSource(file="/run/secrets/t")) == ["--influx-token-file", "/run/secrets/t"]
    assert token_flags(TokenSource(secret="projects/p/secrets/s/versions/1")) == [
        "--influx-token-secret", "projects/p/secrets/s/versions/1"]
    with pytest.raises(ValueError, match="not both or neither"):
        token_flags(TokenSource())
    with pytest.raises(ValueError, match="not both or neither"):
        token_flags(TokenSource(file="/f", secret="projects/p/secrets/s/versions/1"))
    password = kafka_login("u", file="/run/secrets/k").password
    assert token_flags(password) == ["--kafka-password-file", "/run/secrets/k"]
    with pytest.raises(ValueError, match="Kafka password is a file or a Secret Manager version"):
        token_flags(kafka_login("u").password)


def test_without_a_login_a_job_does_not_authenticate_and_a_login_needs_a_kafka_password():
    args = cli.parse_producer_args(producer_args(JOBS, bootstrap_servers="kafka:9092", checkpoint_root="/c",
                                                 kafka_login=None))
    assert (args.kafka_user, args.kafka_password_file, args.kafka_password_secret) == (None, None, None)
    with pytest.raises(ValueError, match="must be a Kafka password"):
        producer_args(JOBS, bootstrap_servers="kafka:9092", checkpoint_root="/c",
                      kafka_login=KafkaCredential("hydro-producer", TokenSource(file="/run/secrets/t")))


@pytest.mark.parametrize("token", [TokenSource(file="/run/secrets/t"),
                                   TokenSource(secret="projects/p/secrets/s/versions/latest")])
def test_the_job_reads_back_the_token_source_infra_gave(token):
    argv = consumer_args(JOBS, bootstrap_servers="kafka:9092", influx_url="http://influxdb:8086",
                         influx_org="hydro", influx_bucket="hydro", token=token,
                         checkpoint_root="/ckpt/r1", handover_root="/ckpt", kafka_login=CONSUMER_LOGIN)
    args = cli.parse_consumer_args(argv)
    # As the consumer job builds it (jobs/hydrostream_jobs/consumer_job.py): one class, the same value.
    assert TokenSource(file=args.influx_token_file, secret=args.influx_token_secret) == token
