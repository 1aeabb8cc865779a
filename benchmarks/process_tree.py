"""A command run as a child process and measured whole: wall time, CPU of its process tree, peak RSS.

The benchmark process becomes a child subreaper (Linux prctl), so the JVM that a PySpark driver
leaves behind when it exits is re-parented to us and reaped here: its CPU, and that of the Python
workers it reaped, lands in our RUSAGE_CHILDREN. Peak RSS is read per process (VmHWM) while the
tree runs, so the driver's Python and the JVM are reported apart.
"""

from __future__ import annotations

import ctypes
import os
import resource
import subprocess
import threading
import time
from dataclasses import dataclass

_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Measured:
    """What one command cost."""

    seconds: float
    cpu_seconds: float
    driver_peak_mb: float
    jvm_peak_mb: float
    returncode: int


def become_subreaper() -> None:
    """Adopt orphaned descendants (the JVM outliving its driver) so their CPU is counted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command name) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        table[int(entry)] = (int(text.rsplit(")", 1)[1].split()[1]), name)
    return table


def _peak_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _PeakSampler(threading.Thread):
    """Polls the driver's and the JVM's VmHWM (a high-water mark: polling misses nothing but the end)."""

    def __init__(self, driver: int):
        super().__init__(daemon=True)
        self.driver = driver
        self.driver_peak = 0.0
        self.jvm_peak = 0.0
        self.jvm: int | None = None
        self.done = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.done.is_set():
            self.driver_peak = max(self.driver_peak, _peak_rss_mb(self.driver))
            if self.jvm is None:
                for pid, (parent, name) in _processes().items():
                    if name == "java" and parent in (self.driver, me):
                        self.jvm = pid
            if self.jvm is not None:
                self.jvm_peak = max(self.jvm_peak, _peak_rss_mb(self.jvm))
            self.done.wait(0.2)


def _reap_leftovers(deadline: float) -> None:
    """Reap what outlives the driver (its JVM exits once its stdin closes); kill it past `deadline`."""
    while True:
        try:
            pid, _status, _usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                for orphan, (parent, _name) in _processes().items():
                    if parent == os.getpid():
                        os.kill(orphan, 9)
            time.sleep(0.05)


def run_measured(command: list[str], env: dict[str, str], log_path: str) -> Measured:
    """Run `command` to its end (stdout and stderr to `log_path`); wall time ends when the driver exits."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        sampler = _PeakSampler(process.pid)
        sampler.start()
        _, status, _usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        _reap_leftovers(deadline=time.monotonic() + 120)
        sampler.done.set()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(seconds, cpu, sampler.driver_peak, sampler.jvm_peak, process.returncode)
