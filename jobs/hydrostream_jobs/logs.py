"""The jobs' one log format (UTC ISO-8601 time, level, logger), on stderr beside Spark's own lines."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

JOBS_LOGGER = "hydrostream_jobs"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class UtcIsoFormatter(logging.Formatter):
    """`%(asctime)s` as 2026-12-07T14:03:11.123Z: UTC whatever the machine's zone, one format everywhere."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


def configure_logging() -> None:
    """Every Python log line of the driver to stderr in LOG_FORMAT: the jobs' from INFO, others' from WARNING.

    The root logger gets the handler, so py4j's errors (logged to the root logger, which would otherwise
    fall back to `ERROR:root:` without a time) share the format.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(UtcIsoFormatter(LOG_FORMAT))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger(JOBS_LOGGER).setLevel(logging.INFO)


def run_logged(main: Callable[[list[str]], None], argv: list[str], job: str) -> None:
    """Run an entry point's `main` with the jobs' logging; a failure is one ERROR line and exit status 1.

    SIGTERM keeps Python's default (the process ends at once): a stop signals the whole process group,
    the Spark JVM too, so a graceful end would only wait on a JVM that is going away.
    """
    configure_logging()
    try:
        main(argv)
    except Exception:
        logging.getLogger(f"{JOBS_LOGGER}.{job}").exception("%s failed", job)
        sys.exit(1)
