"""The executor-side InfluxDB writer: batching and gzip into the real InfluxDB, and retries and loud failure
through a proxy in front of it that scripts the faults."""

from __future__ import annotations

import base64
import json
import pickle
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hydrostream_jobs import sink, token
from hydrostream_jobs.cli import parse_consumer_args
from hydrostream_jobs.consumer_job import influx_target as consumer_target
from hydrostream_jobs.handover import StartPosition
from hydrostream_jobs.sink import InfluxTarget, SinkWriteError, retry_after_seconds, write_lines
from hydrostream_jobs.token import TokenError, TokenSource, read_token
from pyspark import cloudpickle

from tests.jobs.influx_fake import Fault


def lines(n: int, start: int = 0) -> list[bytes]:
    return [f"m,device=d{i % 7} v={i}.5 {1_000_000_000 + i}".encode() for i in range(start, start + n)]


def influx_target(url: str, influxdb, tmp_path) -> InfluxTarget:
    """The writer's settings for the test's bucket (its write-only token, from a file), sent to `url`."""
    token_file = tmp_path / "token"
    token_file.write_text(f"  {influxdb.token}\n")
    return InfluxTarget(
        url=url,
        org=influxdb.org,
        bucket=influxdb.bucket,
        token=TokenSource(file=str(token_file)),
        batch_lines=100,
        max_attempts=4,
        timeout_seconds=1.0,
        freshness_objective_seconds=60.0,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.05,
    )


@pytest.fixture
def target(influxdb, tmp_path):
    """Straight to the real InfluxDB."""
    return influx_target(influxdb.url, influxdb, tmp_path)


@pytest.fixture
def proxied(influx_proxy, influxdb, tmp_path):
    """Through the fault proxy (`influx_proxy`) in front of the real InfluxDB."""
    return influx_target(influx_proxy.url, influxdb, tmp_path)


def test_lines_go_in_batches_of_the_configured_size(influxd, influxdb, target):
    before = influxd.accepted_writes()
    result = write_lines(lines(250), target)
    assert (result.points, result.retries, result.attempts) == (250, 0, 3)
    assert influxd.accepted_writes() == before + 3
    assert len(influxdb.measurement("m")) == 250


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", 503),
        Fault("status", 503, retry_after="0"),
        Fault("status", 429, retry_after="0"),
        Fault("status", 500),
        Fault("slow", seconds=1.5),
        Fault("drop"),
        Fault("drop_after_store"),
    ],
)
def test_transient_failures_are_retried_and_nothing_is_lost_or_doubled(influx_proxy, influxdb, proxied,
                                                                        fault):
    influx_proxy.fail_next(fault, fault)
    result = write_lines(lines(250), proxied)
    assert result.points == 250 and result.retries == 2
    assert result.attempts == influx_proxy.requests == 3 + 2
    stored = influxdb.measurement("m")
    assert len(stored) == 250
    assert {fields["v"] for fields in stored.values()} == {i + 0.5 for i in range(250)}


def test_retry_after_is_honoured(influx_proxy, proxied, monkeypatch):
    slept = []
    test_thread, real_sleep = threading.get_ident(), time.sleep

    def sleep(seconds: float) -> None:
        # `sink.time` is the time module: other threads (Spark's, the fake server's) sleep through it too.
        if threading.get_ident() == test_thread:
            slept.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(sink.time, "sleep", sleep)
    influx_proxy.fail_next(Fault("status", 503, retry_after="7"), Fault("status", 429))
    write_lines(lines(10), proxied)
    assert slept[0] == 7.0 and slept[1] <= proxied.backoff_max_seconds


def test_exhausted_retries_fail_loudly(influx_proxy, proxied):
    influx_proxy.fail_next(*[Fault("status", 503)] * proxied.max_attempts)
    with pytest.raises(SinkWriteError, match="after 4 attempts"):
        write_lines(lines(10), proxied)


def test_rejected_batches_fail_at_once_without_retrying(influx_proxy, proxied):
    influx_proxy.fail_next(Fault("status", 400))
    with pytest.raises(SinkWriteError, match="HTTP 400"):
        write_lines(lines(10), proxied)
    assert influx_proxy.requests == 1


def test_a_field_changing_type_is_rejected_by_influxdb_at_once(influxdb, target):
    write_lines([b"m,t=a v=1.0 1"], target)
    with pytest.raises(SinkWriteError, match="HTTP 422"):
        write_lines([b"m,t=a v=1i 2"], target)
    assert influxdb.measurement("m") == {("m", (("t", "a"),), 1): {"v": 1.0}}


def reading_line(device: str, event_ns: int) -> bytes:
    return f"sensor_readings,farm_id=f,zone=z,device_id={device} ph=6.0 {event_ns}".encode()


def test_readings_accepted_within_the_objective_of_their_event_time_count_on_time(influxdb, target):
    now = time.time_ns()
    fresh = [reading_line(f"fresh-{i}", now - i * 1_000_000_000) for i in range(5)]   # 0-4 s old
    late = [reading_line(f"late-{i}", now - (120 + i) * 1_000_000_000) for i in range(3)]  # 2 min old
    window = b"sensor_window_stats,farm_id=f,zone=z ph_mean=6.0 " + str(now).encode()  # not a reading
    result = write_lines([*fresh, window, *late], target)   # objective: 60 s
    assert (result.points, result.readings, result.readings_on_time) == (9, 8, 5)
    assert len(influxdb.measurement("sensor_readings")) == 8


def test_on_time_is_measured_from_when_influxdb_accepted_the_batch():
    objective_ns = 60 * 1_000_000_000
    accepted = 1_767_225_600 * 1_000_000_000
    lines = [reading_line("a", accepted - objective_ns), reading_line("b", accepted - objective_ns - 1),
             reading_line("c", accepted + 5), b"sensor_window_stats,farm_id=f,zone=z n=1i 1",
             b"sensor_readings_extra,farm_id=f v=1.0 1"]
    assert sink.count_on_time(lines, accepted, 60.0) == (3, 2)
    # After a handover, what the previous release wrote (event time before the handover point) is
    # rewritten late but was in InfluxDB on time.
    old = [reading_line("old", 1_000), reading_line("older", 999)]
    assert sink.count_on_time(old, accepted, 60.0, handed_over_until_ns=1_000) == (2, 1)
    assert sink.count_on_time(old, accepted, 60.0, handed_over_until_ns=None) == (2, 0)


def test_a_handed_over_consumer_knows_where_the_previous_release_s_readings_end(tmp_path):
    args = parse_consumer_args(["--source", "files", "--input-path", str(tmp_path), "--sink", "influxdb",
                                "--influx-url", "http://i:8086", "--influx-org", "o", "--influx-bucket", "b",
                                "--influx-token-file", "/t", "--dead-letter-path", "/d",
                                "--checkpoint-location", "/c", "--window", "5m", "--watermark", "10m"])
    assert consumer_target(args, StartPosition(None, "fresh")).handed_over_until_ns is None
    # The start is the previous position less a 5 min window and a 10 min watermark.
    start_ms = 1_767_225_600_000
    handed = consumer_target(args, StartPosition(start_ms, "handed over"))
    assert handed.handed_over_until_ns == (start_ms + 15 * 60_000) * 1_000_000


def test_partition_results_add_up_field_by_field():
    left = sink.PartitionResult(points=10, retries=1, attempts=3, readings=8, readings_on_time=7)
    right = sink.PartitionResult(points=5, retries=0, attempts=1, readings=5, readings_on_time=1)
    assert sink.add_results(left, right) == sink.PartitionResult(15, 1, 4, 13, 8)


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now=1_767_225_600.0) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_functions_handed_to_executors_pickle_by_reference(target):
    mapper = partial(sink.write_partition, target=target)
    payload = cloudpickle.dumps(mapper)
    assert b"write_partition" in payload and len(payload) < 2000
    restored = pickle.loads(payload)
    assert restored.func is sink.write_partition and restored.keywords["target"] == target
    for function in (sink.add_results, sink.write_lines, sink.post_batch):
        assert pickle.loads(cloudpickle.dumps(function)) is function


def test_write_line_frame_writes_from_the_executors(spark, influxdb, target):
    frame = spark.createDataFrame([(line.decode(),) for line in lines(300)], "line string").repartition(3)
    result = sink.write_line_frame(frame, target)
    assert result.points == 300 and len(influxdb.measurement("m")) == 300
    assert result.attempts == 3 and result.readings == 0  # one request per partition; no sensor_readings


class _SecretManager(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/token") and self.headers.get("Metadata-Flavor") == "Google":
            body = json.dumps({"access_token": "ya29.fake", "expires_in": 3599}).encode()
        elif (
            self.path == "/v1/projects/p/secrets/influx/versions/3:access"
            and self.headers.get("Authorization") == "Bearer ya29.fake"
        ):
            body = json.dumps({"payload": {"data": base64.b64encode(b" s3cret\n").decode()}}).encode()
        else:
            self.send_response(403)
            self.end_headers()
            return
        type(self).calls += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_token_comes_from_secret_manager_through_the_metadata_server_once_per_process():
    handler = type("Handler", (_SecretManager,), {"calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    source = TokenSource(
        secret="projects/p/secrets/influx/versions/3",
        metadata_token_url=f"{base}/token",
        secret_manager_url=f"{base}/v1",
    )
    try:
        assert read_token(source) == "s3cret"
        assert read_token(source) == "s3cret"
        assert handler.calls == 2  # one metadata call and one access call, then cached
        wrong = TokenSource(
            secret="projects/p/secrets/other/versions/1",
            metadata_token_url=f"{base}/token",
            secret_manager_url=f"{base}/v1",
        )
        with pytest.raises(TokenError) as error:
            read_token(wrong)
        assert "s3cret" not in str(error.value) and "ya29" not in str(error.value)
    finally:
        server.shutdown()
        token._cache.clear()


def test_a_missing_token_file_is_an_error_naming_the_file_only(tmp_path):
    with pytest.raises(TokenError, match="cannot read InfluxDB token file"):
        read_token(TokenSource(file=str(tmp_path / "absent")))
