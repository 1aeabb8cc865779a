"""Each stack's offline plan equals its reviewed inventory: any infrastructure change shows up as a diff.

After a deliberate change: `make plan STACK=<stack> WRITE=1`, review `git diff tests/inventories`.
"""

import difflib
import subprocess
import sys

import pytest
import yaml

from infra import plan
from infra.settings import STACKS


@pytest.fixture(scope="module", params=STACKS)
def planned(request):
    return plan.run_plan(request.param)


def test_plan_matches_the_reviewed_inventory(planned):
    path = plan.INVENTORIES_DIR / f"{planned.stack}.yaml"
    assert path.is_file(), f"no inventory for {planned.stack}: run `make plan STACK={planned.stack} WRITE=1`"
    expected = path.read_text()
    actual = plan.inventory_yaml(planned)
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            str(path), "plan", n=2))
        pytest.fail(f"{planned.stack}'s plan differs from its inventory; if intended, run "
                    f"`make plan STACK={planned.stack} WRITE=1` and review:\n{diff[:6000]}")


def test_inventory_counts_agree_with_its_resource_list(planned):
    # The stored file is self-consistent, so a hand edit to one half cannot hide a change.
    stored = yaml.safe_load((plan.INVENTORIES_DIR / f"{planned.stack}.yaml").read_text())
    counted: dict[str, int] = {}
    for resource in stored["resources"]:
        counted[resource["type"]] = counted.get(resource["type"], 0) + 1
    assert counted == stored["counts"]
    assert sum(counted.values()) == len(planned.resources) > 0


def test_plan_command_prints_the_inventory(capsys):
    assert plan.main(["dev"]) == 0
    printed = capsys.readouterr().out
    assert printed == plan.inventory_yaml(plan.run_plan("dev"))
    assert "machineType" in printed and "sizing:" in printed


@pytest.mark.parametrize(("section", "text", "named"), [
    ("dataproc", "worker: e2-medium", "hydrostream:dataproc.worker = 'e2-medium'"),
    ("dataproc", "wokers: 3", "hydrostream:dataproc.wokers = 3"),
    ("network", "subnet_cidr: 10.0.0.0/33", "hydrostream:network.subnet_cidr = '10.0.0.0/33'"),
])
def test_plan_of_a_bad_stack_file_fails_naming_the_key(tmp_path, section, text, named):
    dev = (plan.STACKS_DIR / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(f"{dev}  hydrostream:{section}:\n    {text}\n"
                                              if f"hydrostream:{section}:" not in dev else
                                              dev.replace(f"hydrostream:{section}:\n",
                                                          f"hydrostream:{section}:\n    {text}\n"))
    result = subprocess.run([sys.executable, "-m", "infra.plan", "dev", "--stacks-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=plan.ROOT, check=False)
    assert result.returncode == 1
    assert named in result.stderr
    assert "stack 'dev'" in result.stderr and "nothing was deployed" in result.stderr
    assert result.stdout == ""
