"""The consumer's token reader waits, bounded, for a Secret Manager secret that has no version yet."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hydrostream_jobs import token
from hydrostream_jobs.token import TokenError, TokenSource, read_token

SECRET = "projects/p/secrets/influxdb-write-token/versions/latest"


def serve(missing_versions: int, missing_code: int = 404):
    """A metadata server and Secret Manager whose secret gets its version after `missing_versions` reads."""

    class Handler(BaseHTTPRequestHandler):
        accesses = 0

        def log_message(self, format, *args):
            pass

        def do_GET(self):
            if self.path == "/token":
                body = json.dumps({"access_token": "ya29.fake"}).encode()
            elif self.path == f"/v1/{SECRET}:access":
                type(self).accesses += 1
                if type(self).accesses <= missing_versions:
                    self.send_response(missing_code)
                    self.end_headers()
                    return
                body = json.dumps({"payload": {"data": base64.b64encode(b"w-token\n").decode()}}).encode()
            else:
                self.send_response(403)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    return server, Handler, base


@pytest.fixture(autouse=True)
def fresh_cache():
    token._cache.clear()
    yield
    token._cache.clear()


@pytest.mark.parametrize("missing_code", [404, 400])
def test_a_secret_without_a_version_yet_is_waited_for(missing_code):
    server, handler, base = serve(missing_versions=3, missing_code=missing_code)
    try:
        source = TokenSource(secret=SECRET, metadata_token_url=f"{base}/token",
                             secret_manager_url=f"{base}/v1", wait_seconds=10, retry_seconds=0.01)
        assert read_token(source) == "w-token"
        assert handler.accesses == 4
    finally:
        server.shutdown()


def test_the_wait_is_bounded_and_the_error_names_the_secret_only():
    server, handler, base = serve(missing_versions=10**6)
    try:
        source = TokenSource(secret=SECRET, metadata_token_url=f"{base}/token",
                             secret_manager_url=f"{base}/v1", wait_seconds=0.3, retry_seconds=0.05)
        started = time.monotonic()
        with pytest.raises(TokenError, match=r"no enabled version after waiting 0\.3 s") as error:
            read_token(source)
        assert time.monotonic() - started < 5
        assert 2 <= handler.accesses <= 8
        assert SECRET in str(error.value) and "ya29" not in str(error.value)
    finally:
        server.shutdown()


def test_a_refusal_is_not_waited_for():
    server, _, base = serve(missing_versions=0)
    try:
        source = TokenSource(secret="projects/p/secrets/other/versions/1", metadata_token_url=f"{base}/token",
                             secret_manager_url=f"{base}/v1", wait_seconds=30, retry_seconds=0.01)
        started = time.monotonic()
        with pytest.raises(TokenError, match="HTTP 403"):
            read_token(source)
        assert time.monotonic() - started < 5
    finally:
        server.shutdown()
