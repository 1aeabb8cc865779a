"""The test servers' port chooser (tests/ports.py): outside the ephemeral range, distinct, per worker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import pytest

from tests import ports
from tests.ports import PortChooser, free_port, worker_block

# Read here, not through tests.ports: the chooser's own reading is under test.
with open("/proc/sys/net/ipv4/ip_local_port_range") as _range:
    LOW, HIGH = (int(word) for word in _range.read().split())


def test_free_ports_are_outside_the_kernel_s_ephemeral_range_and_never_repeat_in_a_process():
    chosen = [free_port() for _ in range(150)]
    inside = [port for port in chosen if LOW <= port <= HIGH]
    assert not inside, f"ports the kernel may hand to anyone: {inside[:10]}"
    assert len(set(chosen)) == len(chosen), "a port handed out twice"
    assert all(ports.LOWEST <= port <= 65535 for port in chosen)


def test_free_ports_come_from_this_worker_s_own_block():
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) if worker else 0
    block = set(worker_block(worker, workers, (LOW, HIGH)))
    assert {free_port() for _ in range(20)} <= block


@pytest.mark.parametrize("workers", [1, 2, 4, 8])
def test_the_blocks_of_the_workers_are_disjoint_and_outside_the_ephemeral_range(workers):
    names = [None, *(f"gw{n}" for n in range(workers))]
    blocks = [set(worker_block(name, workers, (LOW, HIGH))) for name in names]
    for i, one in enumerate(blocks):
        assert len(one) >= ports.MIN_BLOCK
        assert not any(LOW <= port <= HIGH for port in one)
        for other in blocks[i + 1:]:
            assert not one & other, f"two workers share {sorted(one & other)[:5]}"


def test_two_worker_processes_choose_disjoint_ports():
    """Each process as xdist starts it: gw0 and gw1 of two, in their own interpreters."""
    code = "from tests.ports import free_port; print(*(free_port() for _ in range(100)))"
    chosen = {}
    for worker in ("gw0", "gw1"):
        env = {**os.environ, "PYTEST_XDIST_WORKER": worker, "PYTEST_XDIST_WORKER_COUNT": "2"}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              timeout=60, check=True)
        chosen[worker] = {int(word) for word in done.stdout.split()}
        assert len(chosen[worker]) == 100
    assert not chosen["gw0"] & chosen["gw1"]


def test_a_port_someone_listens_on_is_skipped():
    held, after = free_port(), free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        server.bind(("127.0.0.1", held))
        server.listen()
        assert PortChooser([held, after]).take() == after


def test_a_port_another_process_listens_on_is_skipped():
    """A leftover server of another process (bound to loopback only, as the test servers are)."""
    held, after = free_port(), free_port()
    server = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import socket, sys
        server = socket.socket()
        server.bind(("127.0.0.1", {held}))
        server.listen()
        print("listening", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline() == "listening\n"
        assert PortChooser([held, after]).take() == after
    finally:
        server.communicate("", timeout=30)


def test_a_port_with_a_connection_in_time_wait_is_skipped():
    """The probe binds without SO_REUSEADDR, so it is stricter than the servers, never looser."""
    held, after = free_port(), free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", held))
        server.listen()
        with socket.create_connection(("127.0.0.1", held)):
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: its end of the connection waits
    assert PortChooser([held, after]).take() == after


def test_a_chooser_hands_out_each_port_once_then_says_none_are_left():
    block = [free_port() for _ in range(3)]
    chooser = PortChooser(block, start=2)
    assert [chooser.take() for _ in block] == [block[2], block[0], block[1]]
    with pytest.raises(RuntimeError, match="none left"):
        chooser.take()


def test_the_ephemeral_range_is_read_from_the_kernel_s_file(tmp_path):
    published = tmp_path / "ip_local_port_range"
    published.write_text("20000\t40000\n")
    assert ports.ephemeral_range(published) == (20000, 40000)
    assert not any(20000 <= port <= 40000 for port in worker_block("gw3", 4, (20000, 40000)))


def test_a_machine_with_no_ports_outside_its_ephemeral_range_is_refused():
    with pytest.raises(RuntimeError, match="too few"):
        worker_block("gw0", 2, (1024, 65535))
