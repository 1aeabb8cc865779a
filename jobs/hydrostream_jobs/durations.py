"""The one duration grammar of the jobs and the infrastructure: a positive integer and a unit.

Stack settings (infra/settings.py), the jobs' command lines (cli.py) and the deploy's wait for the
jobs (infra/tools/job_status.py) read durations with it; the jobs hand Spark its interval text
('5 minutes'), which handover.py reads back with `interval_ms`. It ships with every release.
"""

from __future__ import annotations

import re
from typing import Final

GRAMMAR: Final = "a positive duration such as 500ms, 30s, 5m, 1h or 1d"
# unit -> (Spark's interval word, milliseconds)
UNITS: Final = {"ms": ("milliseconds", 1), "s": ("seconds", 1_000), "m": ("minutes", 60_000),
                "h": ("hours", 3_600_000), "d": ("days", 86_400_000)}
_DURATION: Final = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_INTERVAL: Final = re.compile(r"([0-9]+) (milliseconds|seconds|minutes|hours|days)")
_INTERVAL_MS: Final = dict(UNITS.values())


class DurationError(ValueError):
    """Not a duration of the grammar; the message names the text and what is allowed."""


def _parts(text: str) -> tuple[int, str]:
    match = _DURATION.fullmatch(text)
    if not match:
        raise DurationError(f"{text!r} is not {GRAMMAR}")
    amount = int(match.group(1))
    if amount == 0:
        raise DurationError(f"{text!r} is zero: expected {GRAMMAR}")
    return amount, match.group(2)


def check(text: str) -> str:
    """`text` unchanged when it is a duration of the grammar; DurationError otherwise."""
    _parts(text)
    return text


def milliseconds(text: str) -> int:
    """'5m' -> 300000."""
    amount, unit = _parts(text)
    return amount * UNITS[unit][1]


def spark_interval(text: str) -> str:
    """'5m' -> '5 minutes': the interval text Spark's window, watermark and trigger accept."""
    amount, unit = _parts(text)
    return f"{amount} {UNITS[unit][0]}"


def text(milliseconds: int) -> str:
    """300000 -> '5m': a positive number of milliseconds in the largest unit that holds it whole."""
    if milliseconds <= 0:
        raise DurationError(f"{milliseconds} ms is not positive")
    unit = next(unit for unit, (_, ms) in reversed(UNITS.items()) if milliseconds % ms == 0)
    return f"{milliseconds // UNITS[unit][1]}{unit}"


def interval_ms(interval: str) -> int:
    """'5 minutes' (what `spark_interval` gave) -> 300000."""
    match = _INTERVAL.fullmatch(interval)
    if not match:
        raise DurationError(f"{interval!r} is not an interval like '5 minutes'")
    return int(match.group(1)) * _INTERVAL_MS[match.group(2)]
