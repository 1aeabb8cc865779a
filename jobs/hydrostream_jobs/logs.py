"""The jobs' one log format (UTC ISO-8601 time, level, logger), on stderr beside Spark's own lines."""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType

JOBS_LOGGER = "hydrostream_jobs"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UtcIsoFormatter(logging.Formatter):
    """`%(asctime)s` as 2026-12-07T14:03:11.123Z: UTC whatever the machine's zone, one format everywhere."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def configure_logging() -> None:
    """Send every `hydrostream_jobs.*` line from INFO up to stderr in LOG_FORMAT (entry points call it)."""
    logger = logging.getLogger(JOBS_LOGGER)
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UtcIsoFormatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    # A root handler (an embedding program's) would print each line a second time, in its own format.
    logger.propagate = False


def _stop_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_logged(main: Callable[[list[str]], None], argv: list[str], job: str) -> None:
    """Run an entry point's `main` with the jobs' logging; a failure is one ERROR line and exit status 1.

    SIGTERM (docker stop, a cancelled cluster job) ends it as Ctrl-C does, through its `finally` blocks,
    so its last lines (the producer's total, the consumer's summary) are logged and Spark is stopped.
    """
    configure_logging()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        main(argv)
    except Exception:
        logging.getLogger(f"{JOBS_LOGGER}.{job}").exception("%s failed", job)
        sys.exit(1)
