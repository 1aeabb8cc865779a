"""The jobs' Python wheels a release ships: locked pure-Python wheels of PyPI, importable from the zip."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from infra.release import bundle, connector_jars, python_wheels
from infra.release.python_wheels import Wheel, WheelError

URL = ("https://files.pythonhosted.org/packages/eb/a3/b69efbf4143b5b9859b977770bbbabcc2796b702fa69dc40271e45cd5a56/"
       "prometheus_client-0.26.0-py3-none-any.whl")


def lock_with(tmp_path: Path, *lines: str) -> Path:
    lock = tmp_path / "python-wheels.lock"
    lock.write_text("# a comment\n\n" + "\n".join(lines) + "\n")
    return lock


def test_the_lock_ships_exactly_the_jobs_packages_at_the_tested_versions():
    wheels = bundle.shipped_wheels()
    assert [wheel.coordinate for wheel in wheels] == list(bundle.pinned_requirements())
    assert [wheel.shipped_name for wheel in wheels] == ["prometheus_client-0.26.0.zip"]


@pytest.mark.parametrize(("line", "complaint"), [
    (f"prometheus-client==0.26.0 {URL}", "expected `name==version url sha256`"),
    (f"prometheus-client==0.26.0 {URL.replace('files.pythonhosted.org', 'example.org')} {'a' * 64}",
     "must be PyPI's pure-Python wheel"),
    (f"prometheus-client==0.26.0 {URL.replace('py3-none-any', 'cp311-cp311-manylinux_2_17')} {'a' * 64}",
     "zipimport loads no compiled extension"),
    (f"prometheus-client==0.26.1 {URL} {'a' * 64}", "must be PyPI's pure-Python wheel"),  # URL of 0.26.0
])
def test_a_lock_line_that_is_not_a_pinned_pure_python_wheel_is_named(tmp_path, line, complaint):
    with pytest.raises(WheelError, match=r"python-wheels.lock:3: .*" + complaint.replace("`", ".")):
        python_wheels.locked_wheels(lock_with(tmp_path, line))


def test_a_download_whose_bytes_differ_from_the_lock_is_refused(tmp_path):
    data = b"PK\x03\x04 a wheel"
    wheel = Wheel("prometheus-client", "0.26.0", URL, hashlib.sha256(data).hexdigest())
    path = connector_jars.cached(wheel, tmp_path, lambda url: data)
    assert path.read_bytes() == data and path.name == wheel.file_name
    other = Wheel("prometheus-client", "0.26.0", URL, hashlib.sha256(b"other").hexdigest())
    with pytest.raises(connector_jars.JarError, match="refusing it"):
        connector_jars.cached(other, tmp_path / "empty", lambda url: data)


def test_the_shipped_wheel_alone_serves_metrics(tmp_path):
    # As Dataproc ships it: the wheel under its .zip name on the path and no site-packages at all (-I -S),
    # so prometheus_client can only come from the shipped zip. It starts an endpoint and serves a counter,
    # the way hydrostream_jobs.metrics uses it (that module also needs pyspark, absent here).
    (wheel,) = bundle.shipped_wheels()
    shipped = tmp_path / wheel.shipped_name
    shipped.write_bytes(connector_jars.cached(wheel).read_bytes())
    script = (
        "import sys, urllib.request\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import prometheus_client\n"
        "assert prometheus_client.__file__.startswith(sys.argv[1]), prometheus_client.__file__\n"
        "registry = prometheus_client.CollectorRegistry()\n"
        "prometheus_client.Counter('hydro_probe_total', 'probe', registry=registry).inc(3)\n"
        "server, _ = prometheus_client.start_http_server(0, addr='127.0.0.1', registry=registry)\n"
        "body = urllib.request.urlopen(f'http://127.0.0.1:{server.server_port}/metrics', timeout=10).read()\n"
        "print(body.decode())\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script, str(shipped)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "hydro_probe_total 3.0" in done.stdout
    # Without the wheel on the path, the same interpreter has no prometheus_client: the test is not vacuous.
    bare = subprocess.run([sys.executable, "-I", "-S", "-c", "import prometheus_client"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bare.returncode != 0 and "No module named 'prometheus_client'" in bare.stderr
