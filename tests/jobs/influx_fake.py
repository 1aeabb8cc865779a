"""A local stand-in for InfluxDB 2.x's write API: token auth, gzip, strict line protocol, scripted faults.

Points are stored by (measurement, tag set, time) with overwrite semantics, as InfluxDB does, so
a replayed batch must not create anything new. Given an `upstream` (a real InfluxDB), it stores
nothing: it is a proxy that forwards each write unchanged and relays the answer, with its scripted
faults in between, so a test of faults still writes to the real server.

The tests' happy paths write to the real InfluxDB (tests/influxdb). What still uses this module: the fault
tests, through the proxy; the three-broker Kafka test (tests/kafka/test_kafka_cluster.py), storing; the
benchmarks, count-only (`strict=False`: their endpoint must not be the bottleneck); and the window tests,
whose reader of the jobs' lines is `parse_line`.
"""

from __future__ import annotations

import gzip
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SeriesKey = tuple[str, tuple[tuple[str, str], ...], int]
FORWARDED_HEADERS = ("Authorization", "Content-Encoding", "Content-Type")


class LineProtocolError(ValueError):
    """A line InfluxDB would reject."""


@dataclass(frozen=True)
class Fault:
    """What the endpoint does to one request instead of answering 204."""

    kind: str  # "status", "slow", "drop", "drop_after_store"
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0


def _scan(text: str, start: int, stops: str) -> int:
    """Index of the first unescaped character of `stops` from `start` (a backslash escapes any char)."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in stops:
            return i
        i += 1
    return len(text)


def _unescape(text: str, specials: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in specials:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split(text: str, separator: str) -> list[str]:
    parts, start = [], 0
    while True:
        end = _scan(text, start, separator)
        parts.append(text[start:end])
        if end >= len(text):
            return parts
        start = end + 1


def _field_value(text: str) -> float | int:
    if text.endswith("i"):
        if not text[:-1].lstrip("-").isdigit():
            raise LineProtocolError(f"bad integer {text!r}")
        return int(text[:-1])
    if not text or text[0] not in "-0123456789." or any(c not in "0123456789.eE+-" for c in text):
        raise LineProtocolError(f"bad float {text!r}")
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise LineProtocolError(f"non-finite float {text!r}")
    return value


def parse_line(line: str) -> tuple[SeriesKey, dict[str, float | int]]:
    """One line of protocol -> ((measurement, sorted tags, time), fields); strict like InfluxDB."""
    key_end = _scan(line, 0, " ")
    fields_end = _scan(line, key_end + 1, " ")
    if key_end >= len(line) or fields_end >= len(line):
        raise LineProtocolError(f"missing fields or timestamp: {line!r}")
    series = _split(line[:key_end], ",")
    measurement = _unescape(series[0], ", ")
    if not measurement:
        raise LineProtocolError("empty measurement")
    tags = []
    for pair in series[1:]:
        eq = _scan(pair, 0, "=")
        if eq >= len(pair):
            raise LineProtocolError(f"tag without '=': {pair!r}")
        key, value = _unescape(pair[:eq], ",= "), _unescape(pair[eq + 1 :], ",= ")
        if not key or not value:
            raise LineProtocolError(f"empty tag key or value: {pair!r}")
        tags.append((key, value))
    fields: dict[str, float | int] = {}
    for pair in _split(line[key_end + 1 : fields_end], ","):
        eq = _scan(pair, 0, "=")
        if eq >= len(pair):
            raise LineProtocolError(f"field without '=': {pair!r}")
        fields[_unescape(pair[:eq], ",= ")] = _field_value(pair[eq + 1 :])
    stamp = line[fields_end + 1 :]
    if not stamp.lstrip("-").isdigit():
        raise LineProtocolError(f"bad timestamp {stamp!r}")
    return (measurement, tuple(sorted(tags)), int(stamp)), fields


@dataclass
class FakeInflux:
    """The endpoint's state; `start()` serves it on 127.0.0.1 and returns the base URL."""

    token: str = "test-token"
    org: str = "hydro-org"
    bucket: str = "hydro-bucket"
    points: dict[SeriesKey, dict[str, float | int]] = field(default_factory=dict)
    field_types: dict[tuple[str, str], type] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: int = 0
    accepted_writes: int = 0
    lines_received: int = 0
    rejected: list[str] = field(default_factory=list)
    port: int = 0
    # False: only count the lines (a benchmark's endpoint must not be the bottleneck).
    strict: bool = True
    # A real InfluxDB's base URL: forward every write there instead of checking and storing it here.
    upstream: str | None = None
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def measurement(self, name: str) -> dict[SeriesKey, dict[str, float | int]]:
        return {key: fields for key, fields in self.points.items() if key[0] == name}

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.requests += 1
            return self.faults.pop(0) if self.faults else None

    def _forward(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str, str | None]:
        """(status, body, Retry-After) of the upstream's answer to the same request."""
        request = urllib.request.Request(f"{self.upstream}{path}", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, message, retry_after = response.status, response.read().decode(), None
        except urllib.error.HTTPError as error:
            status, message, retry_after = error.code, error.read().decode(), error.headers.get("Retry-After")
        if 200 <= status < 300:
            with self._lock:
                self.accepted_writes += 1
        else:
            self.rejected.append(message)
        return status, message, retry_after

    def _store(self, lines: list[str]) -> tuple[int, str]:
        if not self.strict:
            with self._lock:
                self.accepted_writes += 1
                self.lines_received += len(lines)
            return 204, ""
        parsed = []
        for line in lines:
            try:
                parsed.append(parse_line(line))
            except LineProtocolError as error:
                return 400, str(error)
        with self._lock:
            for (measurement, _tags, _time), fields in parsed:
                for name, value in fields.items():
                    known = self.field_types.setdefault((measurement, name), type(value))
                    if known is not type(value):
                        return 422, f"field type conflict: {measurement}.{name} is {known.__name__}"
            for key, fields in parsed:
                self.points.setdefault(key, {}).update(fields)
            self.accepted_writes += 1
            self.lines_received += len(parsed)
        return 204, ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeInflux

    def log_message(self, format, *args):  # silence per-request logging
        pass

    def _answer(self, status: int, message: str = "", retry_after: str | None = None) -> None:
        body = message.encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        fault = self.fake._next_fault()
        if fault is not None and fault.kind == "status":
            return self._answer(fault.status, "scripted failure", fault.retry_after)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return None
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.seconds)
        if self.fake.upstream is not None:
            forwarded = {name: self.headers[name] for name in FORWARDED_HEADERS if name in self.headers}
            status, message, retry_after = self.fake._forward(self.path, forwarded, body)
            if fault is not None and fault.kind == "drop_after_store":
                self.close_connection = True
                return None
            return self._answer(status, message, retry_after)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        expected = {"org": [self.fake.org], "bucket": [self.fake.bucket], "precision": ["ns"]}
        if url.path != "/api/v2/write" or any(query.get(k) != v for k, v in expected.items()):
            self.fake.rejected.append(f"bad request target {self.path}")
            return self._answer(400, "bad path or query")
        if self.headers.get("Authorization") != f"Token {self.fake.token}":
            self.fake.rejected.append("unauthorized")
            return self._answer(401, "unauthorized")
        if self.headers.get("Content-Encoding") != "gzip":
            self.fake.rejected.append("not gzip")
            return self._answer(400, "expected gzip")
        text = gzip.decompress(body).decode("utf-8")
        status, message = self.fake._store([line for line in text.split("\n") if line])
        if status != 204:
            self.fake.rejected.append(message)
        if fault is not None and fault.kind == "drop_after_store":
            self.close_connection = True
            return None
        return self._answer(status, message)
