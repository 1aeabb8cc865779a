"""Every shell script in the repository passes shellcheck (CI installs it; missing is a failure)."""

import shutil
import subprocess
from pathlib import Path

from infra.paths import PROJECT_DIR

SKIP = {".venv", ".git", ".pulumi-state", "node_modules"}
# Stub commands of the InfluxDB VM test, named as the commands they stand for (docker, curl...).
VM_STUBS = PROJECT_DIR / "tests" / "influxdb" / "vm"


def shell_scripts() -> list[Path]:
    scripts = (p for p in PROJECT_DIR.rglob("*.sh") if not SKIP & set(p.relative_to(PROJECT_DIR).parts))
    return sorted([*scripts, *VM_STUBS.iterdir()])


def test_shellcheck_every_script():
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: .ci/run installs it (apt-get install shellcheck)"
    scripts = shell_scripts()
    assert PROJECT_DIR / "scripts" / "deploy.sh" in scripts
    result = subprocess.run([shellcheck, "--severity=style", *map(str, scripts)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_script_refuses_bad_usage_before_touching_pulumi():
    result = subprocess.run([str(PROJECT_DIR / "scripts" / "deploy.sh"), "apply", "dev"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "usage:" in result.stderr
