"""The jobs release: a deterministic zip of `hydrostream_jobs` plus the entry files, named by digest.

The same source gives the same bytes on any machine (sorted entries, fixed timestamps and
permissions, stored rather than deflated so the zlib build cannot change them). The digest covers
everything that ships with the jobs: the three artifacts, the connector jars the lock pins and the
Python wheels (infra/release/python-wheels.lock), by their sha256, so it names a release: staging and
prod pin it, and deploying a pinned stack refuses any other tree.

    python -m infra.release.bundle                       # the working tree's release digest
    python -m infra.release.bundle --commit-of DIGEST    # the commit that release was built from
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from infra.release import connector_jars, git_source, python_wheels

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
JOBS_DIR: Final = REPO_ROOT / "jobs"
PACKAGE: Final = "hydrostream_jobs"
PACKAGE_ZIP: Final = f"{PACKAGE}.zip"
ENTRY_FILES: Final = ("consumer.py", "producer.py")
RELEASES_PREFIX: Final = "releases"
# The connector jars ship beside the release's code (infra.release.connector_jars). Their file names carry
# their versions, so a new lock never overwrites what an older release's jobs read.
JARS_FOLDER: Final = "jars"
# The jobs' Python packages beside the code, as zips on the jobs' PYTHONPATH (infra.release.python_wheels).
PYTHON_FOLDER: Final = "python"
# Releases move one stage at a time; `dev` (and `local`) follow the working tree.
PROMOTION_ORDER: Final = ("dev", "staging", "prod")
REQUIREMENTS_LOCK: Final = REPO_ROOT / "requirements.lock"
# What the jobs import beyond pyspark (which Dataproc and the Spark image ship).
JOB_PYTHON_PACKAGES: Final = ("prometheus-client",)
# What a release is built from, relative to the checkout: a tree is clean for a release when none changed.
RELEASE_SOURCES: Final = tuple(
    path.relative_to(REPO_ROOT)
    for path in (JOBS_DIR, connector_jars.LOCK, REQUIREMENTS_LOCK, python_wheels.LOCK)
)
# The pin the stack files ship with: no release has been promoted there yet.
NOTHING_PROMOTED: Final = "0" * 64
# Entries of the digest beside the artifacts (names no artifact can take: they have no extension).
_JARS_ENTRY: Final = "connector-jars"
_WHEELS_ENTRY: Final = "python-wheels"

_ZIP_TIMESTAMP: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_ZIP_FILE_MODE: Final = 0o100644  # regular file, rw-r--r--
_ZIP_CREATED_ON_UNIX: Final = 3
_DIGEST: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Bundle:
    """One jobs release: the package zip (for --py-files), the two entry files, the Python wheels they
    import and their digest."""

    package_zip: bytes
    consumer: bytes
    producer: bytes
    wheels: tuple[python_wheels.Wheel, ...]
    digest: str

    @property
    def files(self) -> dict[str, bytes]:
        """Artifact file name -> bytes, in upload order."""
        return {PACKAGE_ZIP: self.package_zip, "consumer.py": self.consumer, "producer.py": self.producer}

    @property
    def object_names(self) -> dict[str, str]:
        """Artifact file name -> its object name under the artifacts bucket."""
        return {name: release_object_name(self.digest, name) for name in self.files}


def pinned_requirements(packages: tuple[str, ...] = JOB_PYTHON_PACKAGES,
                        lock: Path = REQUIREMENTS_LOCK) -> tuple[str, ...]:
    """`name==version` for each package, as pinned in the lock file (the one source of versions)."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;#]+)\s*(?:[;#].*)?", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    missing = [package for package in packages if package not in pins]
    if missing:
        raise ValueError(f"{lock} pins no version of {missing}")
    return tuple(f"{package}=={pins[package]}" for package in packages)


def is_release_digest(value: object) -> bool:
    """True for a release digest: sha256 as 64 lowercase hex characters."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def release_object_name(digest: str, file_name: str) -> str:
    """`releases/<digest>/<file_name>`: where an artifact of that release lives in the bucket."""
    if not is_release_digest(digest):
        raise ValueError(f"{digest!r} is not a release digest (64 lowercase hex characters)")
    if file_name not in (PACKAGE_ZIP, *ENTRY_FILES):
        raise ValueError(f"{file_name!r} is not a release artifact: {PACKAGE_ZIP}, {', '.join(ENTRY_FILES)}")
    return f"{RELEASES_PREFIX}/{digest}/{file_name}"


def release_wheel_object_name(digest: str, wheel: python_wheels.Wheel) -> str:
    """`releases/<digest>/python/<name>-<version>.zip`: where a wheel of that release lives in the bucket."""
    if not is_release_digest(digest):
        raise ValueError(f"{digest!r} is not a release digest (64 lowercase hex characters)")
    return f"{RELEASES_PREFIX}/{digest}/{PYTHON_FOLDER}/{wheel.shipped_name}"


def shipped_wheels(wheel_lock: Path = python_wheels.LOCK, requirements_lock: Path = REQUIREMENTS_LOCK,
                   packages: tuple[str, ...] = JOB_PYTHON_PACKAGES) -> tuple[python_wheels.Wheel, ...]:
    """The locked wheels, checked to be exactly the jobs' packages at the versions requirements.lock pins
    (what the tests ran with)."""
    wheels = python_wheels.locked_wheels(wheel_lock)
    locked = sorted(wheel.coordinate for wheel in wheels)
    pinned = sorted(pinned_requirements(packages, requirements_lock))
    if locked != pinned:
        raise python_wheels.WheelError(f"{wheel_lock} pins {locked}, but the jobs import {pinned} "
                                       f"({requirements_lock.name}): lock exactly those wheels")
    return wheels


def release_jar_object_name(digest: str, jar_file_name: str) -> str:
    """`releases/<digest>/jars/<jar_file_name>`: where a connector jar of that release lives in the bucket."""
    if not is_release_digest(digest):
        raise ValueError(f"{digest!r} is not a release digest (64 lowercase hex characters)")
    if not re.fullmatch(r"[\w.-]+\.jar", jar_file_name):
        raise ValueError(f"{jar_file_name!r} is not a jar file name")
    return f"{RELEASES_PREFIX}/{digest}/{JARS_FOLDER}/{jar_file_name}"


def package_zip(package_dir: Path) -> bytes:
    """The package's *.py files under `<package name>/` at the zip root, byte-for-byte reproducible."""
    sources = sorted(
        (f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path)
        for path in package_dir.rglob("*.py")
        if path.is_file() and "__pycache__" not in path.relative_to(package_dir).parts
    )
    if not sources:
        raise ValueError(f"{package_dir} holds no Python files to bundle")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for arcname, path in sources:
            entry = zipfile.ZipInfo(arcname, date_time=_ZIP_TIMESTAMP)
            entry.create_system = _ZIP_CREATED_ON_UNIX
            entry.external_attr = _ZIP_FILE_MODE << 16
            entry.compress_type = zipfile.ZIP_STORED
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def release_digest(files: dict[str, bytes]) -> str:
    """sha256 over each artifact's name and bytes, each length-prefixed so no two releases collide."""
    digest = hashlib.sha256()
    for name in sorted(files):
        for part in (name.encode(), files[name]):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def build_bundle(jobs_dir: Path, jar_lock: Path = connector_jars.LOCK,
                 requirements_lock: Path = REQUIREMENTS_LOCK,
                 wheel_lock: Path = python_wheels.LOCK) -> Bundle:
    """Bundle `<jobs_dir>/hydrostream_jobs` and the entry files; the digest also covers jars and wheels.

    A jar counts by its coordinate and sha256 in lock order (the order of the jobs' classpath), a wheel
    by its coordinate and sha256 (checked against the requirements lock's pins): comments, URLs and other
    packages do not count.
    """
    artifacts = {PACKAGE_ZIP: package_zip(jobs_dir / PACKAGE)}
    for name in ENTRY_FILES:
        artifacts[name] = (jobs_dir / name).read_bytes()
    jars = "".join(f"{jar.coordinate} {jar.sha256}\n" for jar in connector_jars.locked_jars(jar_lock))
    wheels = shipped_wheels(wheel_lock, requirements_lock)
    packages = "".join(f"{wheel.coordinate} {wheel.sha256}\n" for wheel in wheels)
    shipped = {**artifacts, _JARS_ENTRY: jars.encode(), _WHEELS_ENTRY: packages.encode()}
    return Bundle(
        package_zip=artifacts[PACKAGE_ZIP],
        consumer=artifacts["consumer.py"],
        producer=artifacts["producer.py"],
        wheels=wheels,
        digest=release_digest(shipped),
    )


def checkout_bundle(root: Path) -> Bundle:
    """The release of the checkout at `root`: its jobs/, connector-jar lock, requirements and wheel locks."""
    jobs, jar_lock, requirements_lock, wheel_lock = (root / source for source in RELEASE_SOURCES)
    return build_bundle(jobs, jar_lock, requirements_lock, wheel_lock)


def previous_stage(stack: str) -> str | None:
    """The stage a stack's release is promoted from, or None when it has none."""
    if stack not in PROMOTION_ORDER[1:]:
        return None
    return PROMOTION_ORDER[PROMOTION_ORDER.index(stack) - 1]


class ReleaseMismatch(ValueError):
    """A pinned stack was asked to deploy a working tree whose bundle is another release."""


def check_release_pin(stack: str, pin: str | None, digest: str) -> str:
    """The release to deploy: the working tree's when unpinned, the pin when the tree matches it."""
    if pin is None:
        return digest
    if not is_release_digest(pin):
        raise ValueError(
            f"stack {stack!r}: hydrostream:jobs.release {pin!r} is not a release digest "
            "(64 lowercase hex characters, as printed by `python -m infra.release.bundle`)"
        )
    if pin == digest:
        return pin
    previous = previous_stage(stack)
    if previous is None:
        remedy = f"remove the pin so that {stack} follows the working tree"
    else:
        remedy = f"promote again from {previous}: `make promote FROM={previous} TO={stack}`"
    if pin == NOTHING_PROMOTED:
        raise ReleaseMismatch(
            f"stack {stack!r} pins jobs release {pin} (hydrostream:jobs.release), the all-zero placeholder: "
            f"no release has been promoted to it yet (the working tree's jobs bundle is release {digest}): "
            f"{remedy}."
        )
    raise ReleaseMismatch(
        f"stack {stack!r} pins jobs release {pin} (hydrostream:jobs.release) but the working tree's jobs "
        f"bundle is release {digest}: check out the commit the pinned release was built from "
        f"(`git checkout {git_source.release_tag(pin)}`; `python -m infra.release.bundle --commit-of {pin}` "
        f"prints it), or {remedy}."
    )


def main(argv: list[str] | None = None) -> int:
    """Command line: print the working tree's release digest, or the commit a release was built from."""
    parser = argparse.ArgumentParser(
        prog="python -m infra.release.bundle",
        description="Print the working tree's jobs release: the digest of jobs/, the connector jars "
                    "(infra/release/connector-jars.lock) and the jobs' Python wheels "
                    "(infra/release/python-wheels.lock).",
    )
    parser.add_argument(
        "--commit-of", metavar="DIGEST",
        help="print instead the commit that release was built from (its git tag release-<first 12 hex>, "
             "created by `make promote FROM=dev TO=staging`); a prefix of 12 or more hex digits will do",
    )
    args = parser.parse_args(argv)
    if args.commit_of is None:
        print(checkout_bundle(REPO_ROOT).digest)
        return 0
    try:
        print(git_source.commit_of(REPO_ROOT, args.commit_of))
    except git_source.GitSourceError as error:
        print(f"bundle: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
