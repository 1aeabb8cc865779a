"""Loopback ports for the servers the tests start (brokers, Prometheus, Alertmanager, the consumer's metrics).

Why not "bind to port 0, read the port, close": that port comes from the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range, usually 32768-60999), the same range the kernel hands to every
other port-0 bind and every outgoing connection on the machine. Between the probe closing it and the
server binding it (a JVM start later: seconds under load), anything may get it: PySpark's accumulator
server, py4j's gateway, a Kafka client's connection. CI saw exactly that: the consumer's metrics port,
probed free, was taken before the consumer bound it (`OSError: [Errno 98] Address already in use`).

So the ports come from OUTSIDE the ephemeral range, where the kernel never hands out a port on its own;
only a program naming the port explicitly can take one:

- pytest-xdist workers (PYTEST_XDIST_WORKER gw0, gw1, ..., PYTEST_XDIST_WORKER_COUNT of them) each get
  their own disjoint block, so two workers never choose the same port; a process outside xdist gets
  the block of the controller (slot 0).
- Within a process a counter walks its block and never hands out a port twice, so a port given up for
  a while (a broker stopped for an outage, a port kept closed on purpose) is not given to the next
  caller. The walk starts at an offset drawn from the process id, so two sessions on one machine (or
  a child process with the same worker id) start far apart in the same block.
- Every port is still checked by binding it, on the IPv4 and IPv6 wildcards, WITHOUT SO_REUSEADDR,
  so a port held by a leftover process (listening, merely bound, or in TIME_WAIT) is skipped. The
  servers themselves bind with SO_REUSEADDR (Java's ServerSocket, Python's HTTPServer), so the probe
  is the stricter of the two: a port it accepts, they can bind.

Ports below LOWEST are left alone: registered services (5432, 8080, 9092, ...) live there.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 10000
HIGHEST = 65535
# Fewer ports than this for a worker's block: refuse rather than run a suite that runs out mid-way.
MIN_BLOCK = 200


def ephemeral_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The kernel's ephemeral port range (inclusive), as Linux publishes it."""
    low, high = (int(word) for word in path.read_text().split())
    return low, high


def candidate_ports(ephemeral: tuple[int, int]) -> list[int]:
    """Every port from LOWEST to HIGHEST the kernel never hands out by itself."""
    low, high = ephemeral
    return [port for port in range(LOWEST, HIGHEST + 1) if not low <= port <= high]


def worker_slot(worker: str | None) -> int:
    """0 for a process outside xdist (or its controller), N + 1 for xdist's worker gwN."""
    if not worker:
        return 0
    found = re.fullmatch(r"gw(\d+)", worker)
    if found is None:
        raise ValueError(f"unexpected PYTEST_XDIST_WORKER {worker!r} (want gw<N>)")
    return int(found.group(1)) + 1


def worker_block(worker: str | None, workers: int, ephemeral: tuple[int, int]) -> Sequence[int]:
    """The ports of `worker`'s block when xdist runs `workers` workers (0 outside xdist)."""
    candidates = candidate_ports(ephemeral)
    slots = workers + 1  # the workers and the controller/no-xdist slot
    size = len(candidates) // slots
    if size < MIN_BLOCK:
        raise RuntimeError(
            f"{len(candidates)} ports outside the ephemeral range {ephemeral[0]}-{ephemeral[1]} "
            f"from {LOWEST}: too few for {slots} blocks of {MIN_BLOCK}; narrow "
            "net.ipv4.ip_local_port_range or run fewer workers")
    slot = worker_slot(worker)
    if slot >= slots:
        raise RuntimeError(f"worker {worker} is beyond the {workers} workers of PYTEST_XDIST_WORKER_COUNT")
    return candidates[slot * size:(slot + 1) * size]


def bindable(port: int) -> bool:
    """True if nothing holds `port` on any local address (IPv4 or IPv6), TIME_WAIT included."""
    families = [(socket.AF_INET, "0.0.0.0")]
    if socket.has_ipv6:
        families.append((socket.AF_INET6, "::"))
    for family, wildcard in families:
        try:
            probe = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 in this network namespace: nothing can hold an IPv6 port
            continue
        with probe:
            # No SO_REUSEADDR: a port in TIME_WAIT fails here, though the servers could bind it.
            try:
                probe.bind((wildcard, port))
            except OSError as error:
                if error.errno in (errno.EADDRINUSE, errno.EACCES):
                    return False
                if error.errno == errno.EADDRNOTAVAIL:  # the wildcard of a disabled family
                    continue
                raise
    return True


class PortChooser:
    """Hands out the ports of one block, each at most once, from `start` on, wrapping once."""

    def __init__(self, block: Sequence[int], start: int = 0) -> None:
        if not block:
            raise ValueError("an empty block of ports")
        self.block = block
        self.start = start % len(block)
        self.taken = 0  # how far the walk got: ports before it were handed out or skipped
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            while self.taken < len(self.block):
                port = self.block[(self.start + self.taken) % len(self.block)]
                self.taken += 1
                if bindable(port):
                    return port
        raise RuntimeError(
            f"every port of {self.block[0]}-{self.block[-1]} was handed out or held: none left")


_chooser: PortChooser | None = None
_chooser_pid = 0
_chooser_lock = threading.Lock()


def process_chooser() -> PortChooser:
    """This process's chooser over its worker's block (a forked child makes its own)."""
    global _chooser, _chooser_pid
    with _chooser_lock:
        if _chooser is None or _chooser_pid != os.getpid():
            worker = os.environ.get("PYTEST_XDIST_WORKER")
            workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) if worker else 0
            block = worker_block(worker, workers, ephemeral_range())
            # Knuth's multiplicative hash spreads neighbouring pids across the block.
            _chooser = PortChooser(block, start=os.getpid() * 2654435761)
            _chooser_pid = os.getpid()
        return _chooser


def free_port() -> int:
    """A loopback TCP port outside the kernel's ephemeral range, never handed out before in this process,
    that nothing holds right now."""
    return process_chooser().take()
