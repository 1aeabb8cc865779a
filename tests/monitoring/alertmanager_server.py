"""A real Alertmanager on a free loopback port, and a webhook receiver the tests read."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_server import LocalServer, local_server

from tests.ports import free_port


@dataclass
class Webhook:
    """An HTTP server on loopback that keeps every JSON body POSTed to it."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def notifications(self) -> list[dict[str, Any]]:
        """The notifications received so far (Alertmanager's webhook payloads)."""
        with self.lock:
            return list(self.received)

    def alerts(self, receiver: str) -> list[dict[str, str]]:
        """Labels of every firing alert delivered to `receiver` so far."""
        return [alert["labels"] for body in self.notifications() if body["receiver"] == receiver
                for alert in body["alerts"] if alert["status"] == "firing"]


@contextmanager
def webhook_server() -> Iterator[Webhook]:
    """A `Webhook` listening on a free loopback port until the block ends."""
    port = free_port()
    hook = Webhook(f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with hook.lock:
                hook.received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class AlertmanagerServer(LocalServer):
    """A running Alertmanager and its API v2."""

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts the way Prometheus does (API v2)."""
        request = urllib.request.Request(f"{self.base}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert Alertmanager holds, with its status (active, suppressed, inhibitedBy)."""
        with urllib.request.urlopen(f"{self.base}/api/v2/alerts", timeout=5) as response:
            return json.load(response)


@contextmanager
def alertmanager_server(binary: str, workdir: Path, config_text: str) -> Iterator[AlertmanagerServer]:
    """Alertmanager with `config_text`, its own storage, no cluster listener; stopped when the block ends."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(config_text)
    command = [binary, f"--config.file={config}", f"--storage.path={workdir / 'data'}",
               f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"]
    with local_server("alertmanager", command, workdir, port, AlertmanagerServer) as server:
        yield server
