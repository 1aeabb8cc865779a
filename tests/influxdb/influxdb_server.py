"""A real influxd on a free loopback port, set up as the stacks set it up, and one bucket per test.

The server is set up with the values the stacks give the image's setup (org, bucket, retention, admin
user: infra/services/influxdb.py) and an operator token only the fixture holds. Each test gets its
own bucket, kept forever (retention 0: the tests write event times of any age), with a write-only
token for the consumer and a read-only one for the test, both made by the stacks' own script
(infra/render/templates/influxdb-token.sh) through the `influx` CLI, as Grafana's and the jobs' are.
Tests read back with Flux through the HTTP API, independently of the jobs' code.
"""

from __future__ import annotations

import calendar
import csv
import io
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from infra import catalog
from infra.services.influxdb import InfluxDbSpec, influxdb_spec
from infra.settings import InfluxdbSettings
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN_SCRIPT = ROOT / "infra" / "render" / "templates" / "influxdb-token.sh"
# The consumer's and Grafana's scoped tokens, as the stacks describe them.
WRITE, READ = (next(t for t in catalog.SCOPED_TOKENS if t.access == access) for access in ("write", "read"))
# Not the stacks' memory: only what GOMEMLIMIT is derived from, for the same setup values.
MEMORY_MB = 1024
STOP_TIMEOUT_S = 30

SeriesKey = tuple[str, tuple[tuple[str, str], ...], int]
# The first and last times InfluxDB can hold (int64 nanoseconds, less reserved extremes); the delete API
# refuses a later stop, and a range stops before it.
FIRST_TIME, LAST_TIME = "1677-09-21T00:12:43.145224194Z", "2262-04-11T23:47:16.854775806Z"
_ACCEPTED_WRITES = re.compile(
    r'^http_api_requests_total\{[^}]*path="/api/v2/write",[^}]*status="2XX"[^}]*\} (\S+)$', re.MULTILINE)
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z")


def time_ns(text: str) -> int:
    """Nanoseconds since the epoch of Flux's RFC 3339 UTC `_time`."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    seconds = calendar.timegm(datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").timetuple())
    return seconds * 1_000_000_000 + int((match.group(2) or "").ljust(9, "0"))


_TYPES = {"double": float, "long": int, "unsignedLong": int, "string": str,
          "boolean": lambda text: text == "true"}


def parse_annotated_csv(text: str) -> list[dict[str, object]]:
    """Rows of a Flux CSV answer with the `datatype` annotation, values converted by their column type."""
    rows: list[dict[str, object]] = []
    types: list[str] = []
    header: list[str] | None = None
    for record in csv.reader(io.StringIO(text)):
        if not record or record == [""]:
            header = None  # a blank line ends a table; the next one brings its own annotations
        elif record[0] == "#datatype":
            types, header = record, None
        elif header is None:
            header = record
        else:
            row = {}
            for name, kind, value in zip(header, types, record, strict=True):
                if name and value != "":
                    row[name] = _TYPES.get(kind, str)(value)
            rows.append(row)
    return rows


@dataclass
class InfluxBucket:
    """One test's bucket: where the consumer writes (`token` is write-only) and how the test reads it."""

    server: InfluxServer
    org: str
    bucket: str
    token: str           # write-only, for this bucket
    read_token: str      # read-only, for this bucket

    @property
    def url(self) -> str:
        return self.server.url

    def query(self, flux: str, token: str | None = None) -> list[dict[str, object]]:
        """The rows of a Flux query, asked with the read-only token unless told otherwise."""
        return self.server.query(self.org, flux, token or self.read_token)

    def measurement(self, name: str) -> dict[SeriesKey, dict[str, float | int]]:
        """Every point of measurement `name`: (measurement, sorted tags, time ns) -> fields."""
        flux = (f'from(bucket: {json.dumps(self.bucket)})'
                f' |> range(start: {FIRST_TIME}, stop: {LAST_TIME})'
                f' |> filter(fn: (r) => r._measurement == {json.dumps(name)})')
        points: dict[SeriesKey, dict[str, float | int]] = {}
        for row in self.query(flux):
            tags = tuple(sorted((k, str(v)) for k, v in row.items()
                                if not k.startswith("_") and k not in ("result", "table")))
            key = (str(row["_measurement"]), tags, time_ns(str(row["_time"])))
            points.setdefault(key, {})[str(row["_field"])] = row["_value"]  # type: ignore[assignment]
        return points

    def empty(self) -> None:
        """Delete every point of the bucket (with the operator token: the scoped ones may not)."""
        body = {"start": FIRST_TIME, "stop": LAST_TIME}
        target = urllib.parse.urlencode({"org": self.org, "bucket": self.bucket})
        request = urllib.request.Request(
            f"{self.url}/api/v2/delete?{target}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Token {self.server.operator_token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60):
            pass


@dataclass
class InfluxServer:
    """A running influxd set up like the stacks' one; the operator token never leaves this object."""

    url: str
    spec: InfluxDbSpec
    influx_cli: Path
    workdir: Path
    process: subprocess.Popen
    operator_token: str = field(repr=False)
    _buckets: Iterator[int] = field(default_factory=itertools.count)

    def cli_env(self) -> dict[str, str]:
        """The `influx` CLI's environment: this server, its own config folder (never ~/.influxdbv2)."""
        return {**os.environ, "PATH": f"{self.influx_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}",
                "INFLUX_HOST": self.url, "INFLUX_CONFIGS_PATH": str(self.workdir / "influx-configs")}

    def cli(self, *args: str) -> str:
        """Run the `influx` CLI with the operator token (in its environment only); its stdout."""
        env = {**self.cli_env(), "INFLUX_TOKEN": self.operator_token}
        done = subprocess.run([str(self.influx_cli), *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"influx {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def scoped_token(self, bucket: str, access: str, description: str) -> str:
        """A token that may only `access` `bucket`, from the stacks' influxdb-token.sh (found again by
        `description` when it exists)."""
        token_file = self.workdir / "operator-token"
        done = subprocess.run(["bash", str(TOKEN_SCRIPT), str(token_file), self.spec.admin_user,
                               self.spec.org, bucket, access, description],
                              env=self.cli_env(), capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0 or not done.stdout:
            raise RuntimeError(f"influxdb-token.sh {bucket} {access}: {done.stderr.strip()}")
        return done.stdout

    def new_bucket(self) -> InfluxBucket:
        """A fresh bucket that keeps data forever, with its own write-only and read-only tokens."""
        name = f"test-{next(self._buckets)}"
        self.cli("bucket", "create", "--org", self.spec.org, "--name", name, "--retention", "0")
        return InfluxBucket(self, self.spec.org, name,
                            token=self.scoped_token(name, WRITE.access, f"{WRITE.description}-{name}"),
                            read_token=self.scoped_token(name, READ.access, f"{READ.description}-{name}"))

    def query(self, org: str, flux: str, token: str) -> list[dict[str, object]]:
        """Rows of a Flux query through the HTTP API (/api/v2/query)."""
        body = {"query": flux, "type": "flux", "dialect": {"annotations": ["datatype"], "header": True}}
        request = urllib.request.Request(
            f"{self.url}/api/v2/query?{urllib.parse.urlencode({'org': org})}",
            data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
                     "Accept": "application/csv"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return parse_annotated_csv(response.read().decode("utf-8"))

    def accepted_writes(self) -> int:
        """How many writes (/api/v2/write requests) the server has accepted so far, by its own metrics."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode("utf-8")
        return int(sum(float(value) for value in _ACCEPTED_WRITES.findall(text)))


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return json.load(response).get("status") == "pass"
    except (OSError, ValueError):
        return False


def container_env(spec: InfluxDbSpec, secret_paths: dict[str, Path]) -> dict[str, str]:
    """The InfluxDB container's environment as the stacks give it: the spec's values and each secret file's
    `*_FILE` variable, pointing at `secret_paths` (secret -> file) instead of the container's paths."""
    files = {f.env: str(secret_paths[f.secret]) for f in spec.service.secret_files if f.env is not None}
    return {**spec.env, **files}


def entrypoint_setup(env: dict[str, str]) -> list[str]:
    """The `influx setup` arguments the influxdb:2.7 image's entrypoint makes of a container's environment
    on first boot: DOCKER_INFLUXDB_INIT_<NAME>, or the file that DOCKER_INFLUXDB_INIT_<NAME>_FILE names."""
    if env.get("DOCKER_INFLUXDB_INIT_MODE") != "setup":
        raise ValueError("the container's environment does not ask the entrypoint to set InfluxDB up")

    def value(name: str) -> str:
        variable = f"DOCKER_INFLUXDB_INIT_{name}"
        if f"{variable}_FILE" in env:
            return Path(env[f"{variable}_FILE"]).read_text().rstrip("\n")  # the entrypoint's $(cat FILE)
        return env.get(variable, "")

    required = {"--username": value("USERNAME"), "--password": value("PASSWORD"),
                "--org": value("ORG"), "--bucket": value("BUCKET")}
    missing = [option for option, given in required.items() if not given]
    if missing:
        raise ValueError(f"the entrypoint would refuse to set up without {missing}")
    args = ["setup", "--force"]
    optional = {"--retention": value("RETENTION"), "--token": value("ADMIN_TOKEN")}
    for option, given in {**required, **optional}.items():
        if given:
            args += [option, given]
    return args


@contextmanager
def influxdb_server(binaries: dict[str, Path], workdir: Path,
                    operator_token: str | None = None) -> Iterator[InfluxServer]:
    """influxd on a free loopback port with its data under `workdir`, set up like the stacks' one (the
    `influx setup` the image's entrypoint makes of the stacks' container environment and secret files, with
    `operator_token` as a VM takes it from Secret Manager; a new one by default), until the block ends;
    then stopped with SIGINT (SIGTERM would kill it without closing its files)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spec = influxdb_spec(InfluxdbSettings(), MEMORY_MB)
    command = [str(binaries["influxd"]), "run", f"--http-bind-address=127.0.0.1:{port}",
               f"--bolt-path={workdir / 'influxd.bolt'}", f"--engine-path={workdir / 'engine'}",
               f"--sqlite-path={workdir / 'influxd.sqlite'}", "--reporting-disabled", "--log-level=error"]
    env = {**os.environ, "GOMEMLIMIT": spec.env["GOMEMLIMIT"]}
    with (workdir / "influxd.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=env)
        try:
            deadline = time.monotonic() + 60
            while not _healthy(url):
                if process.poll() is not None:
                    raise RuntimeError(f"influxd exited with {process.returncode}: see {log.name}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"influxd on {url} was not healthy within 60 s")
                time.sleep(0.2)
            server = InfluxServer(url, spec, binaries["influx"], workdir, process,
                                  operator_token=operator_token or secrets.token_hex(32))
            (workdir / "operator-token").write_text(server.operator_token)
            (workdir / "admin-password").write_text(secrets.token_hex(16))
            secret_paths = {catalog.INFLUXDB_TOKEN: workdir / "operator-token",
                            catalog.INFLUXDB_ADMIN_PASSWORD: workdir / "admin-password"}
            server.cli(*entrypoint_setup(container_env(spec, secret_paths)))
            yield server
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
