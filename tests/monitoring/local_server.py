"""A server binary run for a test on a free loopback port: started, waited for until ready, stopped.

Prometheus and Alertmanager (prometheus_server.py, alertmanager_server.py) both run this way; so does
any later one. The server's output goes to `<name>.log` in its work directory.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest


@dataclass(frozen=True)
class LocalServer:
    """A running server process and where it listens."""

    name: str
    port: int
    process: subprocess.Popen

    @property
    def address(self) -> str:
        """host:port, as other servers' configs name it."""
        return f"127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        """Its base URL."""
        return f"http://{self.address}"

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self.process.poll() is None

    def wait_for(self, condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
        """`wait_until` with this server required to stay alive."""
        return wait_until(condition, timeout_s, what, self)


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str, *servers: LocalServer) -> Any:
    """Poll `condition` until it returns something truthy (an OSError counts as not yet); fail when time
    runs out or one of `servers` exits."""
    deadline = time.monotonic() + timeout_s
    last_error: OSError | None = None
    while time.monotonic() < deadline:
        for server in servers:
            if not server.alive():
                pytest.fail(f"{server.name} exited with {server.process.returncode} while waiting for {what}")
        try:
            value = condition()
            if value:
                return value
        except OSError as error:
            last_error = error
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what} (last error: {last_error})")


Server = TypeVar("Server", bound=LocalServer)


@contextmanager
def local_server(name: str, command: Sequence[str], workdir: Path, port: int,
                 kind: type[Server] = LocalServer) -> Iterator[Server]:
    """Run `command` (which must listen on 127.0.0.1:`port`) until its /-/ready answers 200, yield it,
    and stop it when the block ends (killed if it does not stop within 20 s)."""
    with (workdir / f"{name}.log").open("w") as log:
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT)
        server = kind(name, port, process)
        try:
            def ready() -> bool:
                with urllib.request.urlopen(f"{server.base}/-/ready", timeout=2) as response:
                    return response.status == 200
            server.wait_for(ready, 60, f"{name}'s /-/ready")
            yield server
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
