"""The jobs' Python packages a release ships: pure-Python wheels pinned by URL and sha256 in a lock file.

Dataproc (`python_file_uris`) and spark-submit (`--py-files`) put each `.zip` they are given on the
drivers' and the executors' PYTHONPATH, and Python imports a pure-Python wheel's packages straight from
the archive (a wheel is a zip with its packages at the root). So each locked wheel ships, its bytes
unchanged, as `<name>-<version>.zip`: PySpark's addPyFile adds only `.zip`, `.egg` and `.jar` files to
the executors' path, and a `.whl` name would be shipped and never imported. Neither cluster creation nor
a job start then reaches PyPI. Only the deploying machine downloads the wheels, once, into the cache the
connector jars use (`connector_jars.cached`); bytes that differ from the lock are refused.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.release import connector_jars

LOCK: Final = Path(__file__).resolve().parent / "python-wheels.lock"
PYPI_FILES: Final = "https://files.pythonhosted.org/packages/"
_LINE: Final = re.compile(r"([a-z0-9][a-z0-9-]*)==([\w.]+)\s+(\S+)\s+([0-9a-f]{64})")


class WheelError(ValueError):
    """A lock line that is not a pinned, pure-Python wheel of PyPI; the message says which and why."""


@dataclass(frozen=True)
class Wheel:
    """One pinned pure-Python wheel and the sha256 of its bytes."""

    name: str           # normalized: lowercase, hyphens
    version: str
    url: str
    sha256: str

    @property
    def coordinate(self) -> str:
        return f"{self.name}=={self.version}"

    @property
    def file_name(self) -> str:
        """The wheel's own file name, as PyPI serves it (the cache keeps it)."""
        return self.url.rsplit("/", 1)[1]

    @property
    def shipped_name(self) -> str:
        """The name it ships under, in the release and on the jobs' --py-files: a `.zip`."""
        return f"{self.name.replace('-', '_')}-{self.version}.zip"


def _wheel(match: re.Match[str], where: str) -> Wheel:
    wheel = Wheel(*match.groups())
    expected = f"{wheel.name.replace('-', '_')}-{wheel.version}-py3-none-any.whl"
    if not wheel.url.startswith(PYPI_FILES) or wheel.file_name != expected:
        raise WheelError(f"{where}: {wheel.coordinate} must be PyPI's pure-Python wheel "
                         f"{PYPI_FILES}.../{expected} (zipimport loads no compiled extension), "
                         f"got {wheel.url}")
    return wheel


def locked_wheels(lock: Path = LOCK) -> tuple[Wheel, ...]:
    """The wheels the lock pins, in its order; a malformed line is named with its number."""
    return tuple(_wheel(match, where) for where, match in
                 connector_jars.lock_lines(lock, _LINE, "name==version url sha256", WheelError))


def main() -> int:
    """Download (or check) every locked wheel into the cache and print where each one is."""
    try:
        for wheel in locked_wheels():
            print(f"{wheel.coordinate} {connector_jars.cached(wheel)}")
    except (WheelError, connector_jars.JarError, OSError) as error:
        print(f"python wheels: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
