"""The real InfluxDB the end-to-end tests write to: its scoped tokens do what the stacks rely on, and a point
written in line protocol reads back through Flux as the tests' readers expect."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from infra import catalog
from infra.settings import InfluxdbSettings
from tests.influxdb.influxdb_server import READ, WRITE, container_env, entrypoint_setup, time_ns


def write(bucket, token: str, lines: str, bucket_name: str | None = None) -> int:
    """POST `lines` to /api/v2/write the way the consumer does (gzip, ns precision); the HTTP status."""
    target = {"org": bucket.org, "bucket": bucket_name or bucket.bucket, "precision": "ns"}
    query = urllib.parse.urlencode(target)
    request = urllib.request.Request(f"{bucket.url}/api/v2/write?{query}", data=gzip.compress(lines.encode()),
                                     method="POST", headers={"Authorization": f"Token {token}",
                                                             "Content-Encoding": "gzip"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


LINE = "sensor_readings,device_id=hp\\ 1,farm_id=f\\,1,zone=b\\=ä ph=6.5,ec_ms_cm=2i 1767225600000000001\n"
KEY = ("sensor_readings", (("device_id", "hp 1"), ("farm_id", "f,1"), ("zone", "b=ä")), 1767225600000000001)


def test_the_first_boot_sets_up_the_stacks_org_bucket_retention_admin_and_operator_token(influxd):
    """What the image's entrypoint made of the stacks' container environment (the session's server)."""
    (bucket,) = json.loads(influxd.cli("bucket", "list", "--org", "hydro", "--name", "hydro", "--json"))
    retention_s = InfluxdbSettings().retention_days * 86400
    assert [rule["everySeconds"] for rule in bucket["retentionRules"]] == [retention_s]
    assert [user["name"] for user in json.loads(influxd.cli("user", "list", "--json"))] == ["admin"]
    (operator,) = [auth for auth in json.loads(influxd.cli("auth", "list", "--json"))
                   if auth["token"] == influxd.operator_token]
    assert "write:/authorizations" in operator["permissions"]


def test_the_entrypoint_takes_the_password_and_operator_token_from_the_stacks_secret_files(influxd, tmp_path):
    (tmp_path / "token").write_text("operator\n")
    (tmp_path / "password").write_text("secret")
    env = container_env(influxd.spec, {catalog.INFLUXDB_TOKEN: tmp_path / "token",
                                       catalog.INFLUXDB_ADMIN_PASSWORD: tmp_path / "password"})
    assert entrypoint_setup(env) == ["setup", "--force", "--username", "admin", "--password", "secret",
                                     "--org", "hydro", "--bucket", "hydro", "--retention", "30d",
                                     "--token", "operator"]
    del env["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"]
    with pytest.raises(ValueError, match="--password"):
        entrypoint_setup(env)


def test_a_point_reads_back_with_its_tags_time_and_field_types(influxdb):
    assert write(influxdb, influxdb.token, LINE) == 204
    assert influxdb.measurement("sensor_readings") == {KEY: {"ph": 6.5, "ec_ms_cm": 2}}
    assert type(influxdb.measurement("sensor_readings")[KEY]["ec_ms_cm"]) is int


def test_the_write_token_only_writes_its_bucket_and_the_read_token_only_reads_it(influxd, influxdb):
    other = influxd.new_bucket()
    assert write(influxdb, influxdb.token, LINE, bucket_name=other.bucket) in (401, 403, 404)
    assert write(influxdb, influxdb.read_token, LINE) in (401, 403, 404)
    with pytest.raises(urllib.error.HTTPError) as denied:
        influxdb.query(f'from(bucket: "{influxdb.bucket}") |> range(start: 0)', token=influxdb.token)
    assert denied.value.code in (401, 403, 404)
    with pytest.raises(urllib.error.HTTPError):
        other.query(f'from(bucket: "{influxdb.bucket}") |> range(start: 0)')
    assert influxdb.measurement("sensor_readings") == {} == other.measurement("sensor_readings")


def test_the_token_script_hands_out_the_same_token_again(influxd, influxdb):
    """A reboot or a new deploy runs influxdb-token.sh again: the consumer's token must not change."""
    description = f"{WRITE.description}-{influxdb.bucket}"
    assert influxd.scoped_token(influxdb.bucket, "write", description) == influxdb.token


def descriptions(server) -> list[str]:
    """The description of every token of the server, as `influx auth list` gives them."""
    return [auth["description"] for auth in json.loads(server.cli("auth", "list", "--json"))]


def test_a_bucket_made_again_gets_new_tokens_and_the_dead_ones_go(influxd, influxdb):
    """InfluxDB keeps a deleted bucket's tokens, which then get 403 on the new bucket of the same name (a
    restore into the lost bucket's name): the token script replaces them rather than handing them out."""
    influxd.cli("bucket", "delete", "--org", influxdb.org, "--name", influxdb.bucket)
    influxd.cli("bucket", "create", "--org", influxdb.org, "--name", influxdb.bucket, "--retention", "0")
    assert write(influxdb, influxdb.token, LINE) == 403
    write_description, read_description = (f"{t.description}-{influxdb.bucket}" for t in (WRITE, READ))
    token = influxd.scoped_token(influxdb.bucket, "write", write_description)
    read_token = influxd.scoped_token(influxdb.bucket, "read", read_description)
    assert token != influxdb.token and read_token != influxdb.read_token
    assert write(influxdb, token, LINE) == 204
    assert write(influxdb, read_token, LINE) == 403
    counted = influxdb.query(f'from(bucket: "{influxdb.bucket}") |> range(start: 0) |> count()',
                             token=read_token)
    assert {row["_field"]: row["_value"] for row in counted} == {"ph": 1, "ec_ms_cm": 1}
    found = descriptions(influxd)
    assert found.count(write_description) == 1 == found.count(read_description)
    assert influxd.scoped_token(influxdb.bucket, "write", write_description) == token


def test_accepted_writes_are_counted_by_the_server(influxd, influxdb):
    before = influxd.accepted_writes()
    assert write(influxdb, influxdb.token, LINE) == 204
    assert write(influxdb, influxdb.read_token, LINE) != 204
    assert influxd.accepted_writes() == before + 1


def test_flux_times_convert_to_nanoseconds():
    assert time_ns("1970-01-01T00:00:00Z") == 0
    assert time_ns("2026-01-01T00:00:00.000000001Z") == 1767225600000000001
    assert time_ns("2026-01-01T00:00:00.5Z") == 1767225600500000000


@pytest.mark.parametrize(("stop", "clean"), [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_influxd_stops_cleanly_on_the_catalogs_stop_signal_only(influxdb_binaries, tmp_path, stop, clean):
    """Why catalog.INFLUXDB stops with SIGINT (docker run --stop-signal on the VM, the local container's
    stop_signal): influxd closes its engine on SIGINT and exits 0; docker's default SIGTERM kills it."""
    # Port 0: influxd binds a free port itself and logs it (no port picked here that another may take).
    process = subprocess.Popen(
        [str(influxdb_binaries["influxd"]), "--bolt-path", str(tmp_path / "influxd.bolt"),
         "--engine-path", str(tmp_path / "engine"), "--http-bind-address", "127.0.0.1:0",
         "--reporting-disabled"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = []
        for line in process.stdout:  # until it listens
            started.append(line)
            if "msg=Listening" in line and "transport=http" in line:
                break
        port = re.search(r" port=([0-9]+)", started[-1]).group(1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
        process.send_signal(stop)
        rest, _ = process.communicate(timeout=60)
        log = "".join(started) + rest
    finally:
        if process.poll() is None:
            process.kill()
    assert (process.returncode == 0) is clean, log[-2000:]
    assert ('msg="Stopping"' in log or "msg=Stopping" in log) is clean
    assert catalog.INFLUXDB.stop_signal == signal.Signals.SIGINT.name
