"""Jars resolved by Maven from Maven Central into a cache folder, once: the test broker's and the
MiniYARNCluster's (each module keeps its pom.xml beside it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def resolved_jars(folder: Path, pom: Path, properties: dict[str, str], expected_jar: str, what: str,
                  timeout: float) -> Path:
    """`folder`, filled with the runtime dependencies `pom` declares (with `properties` set) on first use;
    `expected_jar` must be among them. A `.complete` marker says a folder was filled whole."""
    marker = folder / ".complete"
    if marker.exists():
        return folder
    if shutil.which("mvn") is None:
        raise RuntimeError(f"Maven (mvn) is needed to resolve {what}: apt-get install maven")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        "mvn", "-q", "-B", "-f", str(pom), *(f"-D{key}={value}" for key, value in properties.items()),
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={partial}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        output = done.stdout[-3000:] + done.stderr[-3000:]
        raise RuntimeError(f"mvn could not resolve {what}:\n{output}")
    if not (partial / expected_jar).exists():
        raise RuntimeError(f"mvn finished but {partial} has no {expected_jar} ({what})")
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    marker.touch()
    return folder
