"""Alertmanager and amtool of the catalog's version (catalog.ALERTMANAGER's image tag), built once from
the Go module proxy into the test cache, so the tests check the configs with what the stacks run.

Debian's prometheus-alertmanager is 0.25 and lacks `url_file` for webhooks, which the rendered
configs use. `.ci/run` builds them before the tests (`python -m tests.monitoring.alertmanager_build`,
about a minute on a cold cache, nothing once built); a test that finds them missing builds them too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra import catalog

MODULE = "github.com/prometheus/alertmanager"
CACHE = Path(os.environ.get("HYDRO_CACHE", Path.home() / ".cache" / "hydrostream"))
GO_CACHE = CACHE / "go"            # module and build caches, reused by later builds
TOOLS = ("alertmanager", "amtool")
BUILD_TIMEOUT_S = 900


def version() -> str:
    """The Alertmanager version the catalog runs, from its image tag (prom/alertmanager:vX.Y.Z)."""
    match = re.fullmatch(r"prom/alertmanager:(v[0-9]+\.[0-9]+\.[0-9]+)", catalog.ALERTMANAGER.image)
    if match is None:
        raise ValueError(f"catalog.ALERTMANAGER.image {catalog.ALERTMANAGER.image!r}: expected "
                         f"prom/alertmanager:vX.Y.Z, the tag this build pins the module to")
    return match.group(1)


def bin_dir() -> Path:
    """Where this version's binaries live."""
    return CACHE / f"alertmanager-{version()}"


def built_version(binary: Path, go: str) -> str | None:
    """The module version a Go binary was built from (`go version -m`), None when unreadable."""
    result = subprocess.run([go, "version", "-m", str(binary)], capture_output=True, text=True, check=False)
    match = re.search(rf"^\s+mod\s+{re.escape(MODULE)}\s+(\S+)", result.stdout, re.MULTILINE)
    return match.group(1) if result.returncode == 0 and match else None


def ensure_built() -> dict[str, Path]:
    """Tool name -> binary of the catalog's version, building what is missing; raises naming the cause."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` is not installed: the Alertmanager tests build alertmanager and amtool "
                           f"{version()} from the Go module proxy (.ci/run installs Debian's golang-go)")
    target = bin_dir()
    binaries = {tool: target / tool for tool in TOOLS}
    if all(path.is_file() and built_version(path, go) == version() for path in binaries.values()):
        return binaries
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOPATH": str(GO_CACHE), "GOMODCACHE": str(GO_CACHE / "mod"),
           "GOCACHE": str(GO_CACHE / "build"), "GOBIN": str(target), "GOFLAGS": "-mod=mod",
           "CGO_ENABLED": "0"}
    result = subprocess.run([go, "install", *(f"{MODULE}/cmd/{tool}@{version()}" for tool in TOOLS)],
                            env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"building alertmanager {version()} failed:\n{result.stderr[-4000:]}")
    for path in binaries.values():
        if built_version(path, go) != version():
            raise RuntimeError(f"{path}: not a build of {MODULE} {version()}")
    return binaries


def main() -> int:
    """Build (or find) the binaries and print where they are."""
    for tool, path in ensure_built().items():
        print(f"{tool} {version()}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
