"""The jobs release: same source, same bytes and digest; every job file counts; the zip runs the jobs."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from infra.release.bundle import (
    JOBS_DIR,
    REQUIREMENTS_LOCK,
    Bundle,
    ReleaseMismatch,
    build_bundle,
    check_release_pin,
    checkout_bundle,
    release_jar_object_name,
    release_object_name,
)
from infra.release.connector_jars import LOCK as JAR_LOCK
from infra.release.python_wheels import LOCK as WHEEL_LOCK
from infra.release.python_wheels import WheelError

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_SOURCES = sorted(
    name for name in os.listdir(ROOT / "jobs" / "hydrostream_jobs") if name.endswith(".py")
)


@pytest.fixture
def jobs_copy(tmp_path: Path) -> Path:
    """A copy of jobs/ whose files carry other mtimes and permissions than the checkout's."""
    copy = tmp_path / "jobs"
    shutil.copytree(ROOT / "jobs", copy, ignore=shutil.ignore_patterns("__pycache__"))
    for number, path in enumerate(sorted(copy.rglob("*.py"))):
        os.utime(path, (1_234_567_890 + number * 3_601, 1_234_567_890 + number * 3_601))
        path.chmod(0o600 if number % 2 else 0o755)
    return copy


def entries(bundle: Bundle) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(io.BytesIO(bundle.package_zip)).infolist()


def test_the_same_tree_gives_the_same_bytes_and_digest(jobs_copy):
    first, second = build_bundle(JOBS_DIR), build_bundle(JOBS_DIR)
    assert first == second
    copied = build_bundle(jobs_copy)
    assert copied.package_zip == first.package_zip
    assert copied.digest == first.digest
    assert len(first.digest) == 64
    assert set(first.digest) <= set("0123456789abcdef")


def expected_digest(jobs: Path, jar_lock: Path, requirements_lock: Path,
                    wheel_lock: Path = WHEEL_LOCK) -> str:
    """The release digest computed here from the files: artifacts, locked jars, the jobs' locked wheels."""
    entries = {name: (jobs / name).read_bytes() for name in ("consumer.py", "producer.py")}
    entries["hydrostream_jobs.zip"] = build_bundle(jobs, jar_lock, requirements_lock, wheel_lock).package_zip
    jar_lines = [line for line in jar_lock.read_text().splitlines() if line and not line.startswith("#")]
    entries["connector-jars"] = "".join(f"{line}\n" for line in jar_lines).encode()
    # A wheel counts by name==version and sha256, not by its URL.
    wheels = [line.split() for line in wheel_lock.read_text().splitlines()
              if line and not line.startswith("#")]
    entries["python-wheels"] = "".join(f"{pin} {sha256}\n" for pin, _, sha256 in wheels).encode()
    assert len(jar_lines) == 4 and len(wheels) == 1
    expected = hashlib.sha256()
    for name, data in sorted(entries.items()):
        for part in (name.encode(), data):
            expected.update(len(part).to_bytes(8, "big") + part)
    return expected.hexdigest()


def test_the_digest_is_the_sha256_of_the_artifacts_the_locked_jars_and_the_pinned_packages():
    assert build_bundle(JOBS_DIR).digest == expected_digest(JOBS_DIR, JAR_LOCK, REQUIREMENTS_LOCK)
    assert checkout_bundle(ROOT).digest == build_bundle(JOBS_DIR).digest


@pytest.fixture
def locks(tmp_path: Path) -> tuple[Path, Path, Path]:
    jar_lock, requirements_lock = tmp_path / "connector-jars.lock", tmp_path / "requirements.lock"
    wheel_lock = tmp_path / "python-wheels.lock"
    shutil.copy(JAR_LOCK, jar_lock)
    shutil.copy(REQUIREMENTS_LOCK, requirements_lock)
    shutil.copy(WHEEL_LOCK, wheel_lock)
    return jar_lock, requirements_lock, wheel_lock


def edited(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(("lock", "old", "new", "changes"), [
    ("jars", "commons-pool2:2.11.1 ea05", "commons-pool2:2.11.1 fa05", True),      # another jar's bytes
    ("jars", "kafka-clients:3.4.1", "kafka-clients:3.4.2", True),                  # another version
    ("jars", "# sha256 computed here", "# sha256 (re)computed here", False),         # a comment
    ("wheels", "none-any.whl fa93", "none-any.whl fb93", True),                    # another wheel's bytes
    ("wheels", "/eb/a3/", "/eb/a4/", False),                                       # only where it is served
    ("wheels", "# URL and sha256", "# The URL and sha256", False),                 # a comment
    ("requirements", "ruamel-yaml==0.19.1", "ruamel-yaml==0.19.2", False),  # not a package of the jobs
])
def test_the_jar_lock_and_the_jobs_wheels_count_in_the_digest(locks, lock, old, new, changes):
    jar_lock, requirements_lock, wheel_lock = locks
    before = build_bundle(JOBS_DIR, jar_lock, requirements_lock, wheel_lock)
    edited({"jars": jar_lock, "wheels": wheel_lock, "requirements": requirements_lock}[lock], old, new)
    after = build_bundle(JOBS_DIR, jar_lock, requirements_lock, wheel_lock)
    assert (after.digest != before.digest) is changes
    assert after.digest == expected_digest(JOBS_DIR, jar_lock, requirements_lock, wheel_lock)
    assert after.files == before.files  # what is uploaded stays the code


def test_a_wheel_other_than_the_tested_pin_is_refused(locks):
    # The jobs are tested with requirements.lock's version: a release must ship that one.
    jar_lock, requirements_lock, wheel_lock = locks
    edited(requirements_lock, "prometheus-client==0.26.0", "prometheus-client==0.26.1")
    with pytest.raises(WheelError, match=r"pins \['prometheus-client==0.26.0'\], but the jobs import "
                                         r"\['prometheus-client==0.26.1'\]"):
        build_bundle(JOBS_DIR, jar_lock, requirements_lock, wheel_lock)


def test_the_order_of_the_locked_jars_counts_it_is_the_classpath(locks):
    jar_lock, requirements_lock, wheel_lock = locks
    before = build_bundle(JOBS_DIR, jar_lock, requirements_lock, wheel_lock).digest
    lines = jar_lock.read_text().splitlines(keepends=True)
    jars = [i for i, line in enumerate(lines) if not line.startswith("#")]
    lines[jars[-1]], lines[jars[-2]] = lines[jars[-2]], lines[jars[-1]]
    jar_lock.write_text("".join(lines))
    assert build_bundle(JOBS_DIR, jar_lock, requirements_lock, wheel_lock).digest != before


@pytest.mark.parametrize(
    "changed", ["consumer.py", "producer.py", *(f"hydrostream_jobs/{n}" for n in PACKAGE_SOURCES)]
)
def test_any_change_to_a_job_file_changes_the_digest(jobs_copy, changed):
    before = build_bundle(jobs_copy).digest
    path = jobs_copy / changed
    path.write_bytes(path.read_bytes() + b"\n")
    assert build_bundle(jobs_copy).digest != before


def test_a_new_module_changes_the_digest(jobs_copy):
    before = build_bundle(jobs_copy).digest
    (jobs_copy / "hydrostream_jobs" / "extra.py").write_text("VALUE = 1\n")
    assert build_bundle(jobs_copy).digest != before


def test_moving_bytes_from_one_entry_file_to_the_other_changes_the_digest(jobs_copy):
    before = build_bundle(jobs_copy).digest
    consumer, producer = jobs_copy / "consumer.py", jobs_copy / "producer.py"
    head = producer.read_bytes()[:1]
    consumer.write_bytes(consumer.read_bytes() + head)
    producer.write_bytes(producer.read_bytes()[1:])
    assert build_bundle(jobs_copy).digest != before


def test_caches_and_other_files_do_not_enter_the_bundle(jobs_copy):
    before = build_bundle(jobs_copy)
    package = jobs_copy / "hydrostream_jobs"
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\x00compiled")
    (package / "__pycache__" / "stray.py").write_text("X = 1\n")
    (package / "cli.pyc").write_bytes(b"\x00compiled")
    (package / "notes.txt").write_text("not a module\n")
    (jobs_copy / "__pycache__").mkdir(exist_ok=True)
    (jobs_copy / "__pycache__" / "consumer.cpython-311.pyc").write_bytes(b"\x00compiled")
    assert build_bundle(jobs_copy) == before


def test_the_zip_holds_the_package_sources_sorted_with_fixed_timestamps_and_modes():
    bundle = build_bundle(JOBS_DIR)
    infos = entries(bundle)
    names = [info.filename for info in infos]
    assert names == [f"hydrostream_jobs/{name}" for name in PACKAGE_SOURCES]
    assert names == sorted(names)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.create_system == 3
        source = ROOT / "jobs" / info.filename
        assert zipfile.ZipFile(io.BytesIO(bundle.package_zip)).read(info) == source.read_bytes()
    assert bundle.consumer == (ROOT / "jobs" / "consumer.py").read_bytes()
    assert bundle.producer == (ROOT / "jobs" / "producer.py").read_bytes()


def test_artifacts_are_named_under_the_release_digest():
    bundle = build_bundle(JOBS_DIR)
    prefix = f"releases/{bundle.digest}"
    assert bundle.object_names == {
        "hydrostream_jobs.zip": f"{prefix}/hydrostream_jobs.zip",
        "consumer.py": f"{prefix}/consumer.py",
        "producer.py": f"{prefix}/producer.py",
    }
    assert set(bundle.files) == set(bundle.object_names)
    with pytest.raises(ValueError, match="not a release digest"):
        release_object_name("latest", "consumer.py")
    with pytest.raises(ValueError, match="not a release artifact"):
        release_object_name(bundle.digest, "other.py")


def test_connector_jars_are_named_under_the_release_jars_folder():
    digest = "a" * 64
    assert release_jar_object_name(digest, "kafka-clients-3.4.1.jar") == \
        f"releases/{digest}/jars/kafka-clients-3.4.1.jar"
    with pytest.raises(ValueError, match="not a release digest"):
        release_jar_object_name("latest", "kafka-clients-3.4.1.jar")
    with pytest.raises(ValueError, match="not a jar file name"):
        release_jar_object_name(digest, "../consumer.py")


def test_the_entry_files_run_from_the_bundle_alone_on_a_clean_path(tmp_path):
    bundle = build_bundle(JOBS_DIR)
    release = tmp_path / "release"
    release.mkdir()
    for name, data in bundle.files.items():
        (release / name).write_bytes(data)
    # As in tests/jobs/test_jobs_packaging.py: -I so neither the checkout nor the editable install is on
    # the path; site-packages is appended by hand (pyspark, prometheus_client), without its .pth hooks.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    script = (
        "import runpy, sys\n"
        "package_zip, entry, *args = sys.argv[1:]\n"
        f"sys.path[:] = [package_zip, *(p for p in sys.path if p), {site!r}]\n"
        "import hydrostream_jobs.cli, hydrostream_jobs.consumer_job, hydrostream_jobs.producer_job\n"
        "assert hydrostream_jobs.__file__.startswith(package_zip), hydrostream_jobs.__file__\n"
        "sys.argv = [entry, *args]\n"
        "runpy.run_path(entry, run_name='__main__')\n"
    )
    for entry, option in (("consumer.py", "--checkpoint-location"), ("producer.py", "--rate")):
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                "-c",
                script,
                str(release / "hydrostream_jobs.zip"),
                str(release / entry),
                "--help",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage:"), done.stdout
        assert option in done.stdout


def bundle_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.release.bundle", *args], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_the_command_prints_the_working_tree_digest():
    done = bundle_command()
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected_digest(JOBS_DIR, JAR_LOCK, REQUIREMENTS_LOCK) + "\n"


def test_help_prints_usage_not_a_digest():
    done = bundle_command("--help")
    assert done.returncode == 0
    assert done.stdout.startswith("usage: python -m infra.release.bundle [-h] [--commit-of DIGEST]")
    assert build_bundle(JOBS_DIR).digest not in done.stdout


def test_make_bundle_passes_its_args():
    done = subprocess.run(["make", "--no-print-directory", "-s", "bundle", "ARGS=--help"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m infra.release.bundle" in done.stdout


def test_the_commit_of_an_untagged_release_is_refused_in_one_line():
    digest = "ab" * 32
    done = bundle_command("--commit-of", digest)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"bundle: no git tag release-{digest[:12]} in {ROOT}: fetch the release")
    assert len(done.stderr.splitlines()) == 1


DIGEST = "3f5a" + "0" * 60
OTHER = "9c1e" + "f" * 60


def test_an_unpinned_stack_deploys_the_working_tree():
    assert check_release_pin("dev", None, DIGEST) == DIGEST


def test_a_pinned_stack_deploys_its_pin_when_the_tree_matches():
    assert check_release_pin("prod", DIGEST, DIGEST) == DIGEST


@pytest.mark.parametrize(("stack", "previous"), [("staging", "dev"), ("prod", "staging")])
def test_a_pinned_stack_refuses_another_tree_and_says_what_to_do(stack, previous):
    with pytest.raises(ReleaseMismatch) as raised:
        check_release_pin(stack, DIGEST, OTHER)
    message = str(raised.value)
    assert f"'{stack}'" in message
    assert DIGEST in message
    assert OTHER in message
    assert "check out the commit" in message
    assert f"`git checkout release-{DIGEST[:12]}`" in message
    assert f"`python -m infra.release.bundle --commit-of {DIGEST}`" in message
    assert f"make promote FROM={previous} TO={stack}" in message
    assert isinstance(raised.value, ValueError)


def test_the_all_zero_pin_says_nothing_was_promoted_yet():
    with pytest.raises(ReleaseMismatch) as raised:
        check_release_pin("prod", "0" * 64, OTHER)
    message = str(raised.value)
    assert "the all-zero placeholder: no release has been promoted to it yet" in message
    assert "make promote FROM=staging TO=prod" in message
    assert "git checkout" not in message


def test_a_pin_on_a_stack_without_a_previous_stage_says_to_remove_it():
    with pytest.raises(ReleaseMismatch, match="remove the pin"):
        check_release_pin("dev", DIGEST, OTHER)


@pytest.mark.parametrize("pin", ["3f5a", DIGEST.upper(), DIGEST + "\n", ""])
def test_a_malformed_pin_is_named_as_such(pin):
    with pytest.raises(ValueError, match="is not a release digest") as raised:
        check_release_pin("staging", pin, DIGEST)
    assert not isinstance(raised.value, ReleaseMismatch)
    assert "'staging'" in str(raised.value)
