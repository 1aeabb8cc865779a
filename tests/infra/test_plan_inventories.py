"""Each stack's offline plan equals its reviewed inventory: any infrastructure change shows up as a diff.

After a deliberate change: `make plan STACK=<stack> WRITE=1`, review `git diff tests/inventories`.
"""

import dataclasses
import difflib
import re
import subprocess
import sys

import pytest
import yaml

from infra import catalog
from infra.paths import PROJECT_DIR
from infra.services.kafka import KafkaNode
from infra.settings import STACKS
from infra.tools import inventory, mocks, plan

# The keys each broker of a cluster sets itself (node id, quorum, replication), not the catalog's.
BROKER_OWN_ENV = frozenset(KafkaNode(1, "europe-west1-b", ("kafka-1:9093",), 1).env)


@pytest.fixture(scope="module", params=STACKS)
def planned(request, plans):
    return plans[request.param]


def test_plan_matches_the_reviewed_inventory(planned):
    path = inventory.INVENTORIES_DIR / f"{planned.stack}.yaml"
    assert path.is_file(), f"no inventory for {planned.stack}: run `make plan STACK={planned.stack} WRITE=1`"
    expected = path.read_text()
    actual = inventory.inventory_yaml(planned)
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            str(path), "plan", n=2))
        pytest.fail(f"{planned.stack}'s plan differs from its inventory; if intended, run "
                    f"`make plan STACK={planned.stack} WRITE=1` and review:\n{diff[:6000]}")


def test_inventory_counts_agree_with_its_resource_list(planned):
    # The stored file is self-consistent, so a hand edit to one half cannot hide a change.
    stored = yaml.safe_load((inventory.INVENTORIES_DIR / f"{planned.stack}.yaml").read_text())
    counted: dict[str, int] = {}
    for resource in stored["resources"]:
        counted[resource["type"]] = counted.get(resource["type"], 0) + 1
    assert counted == stored["counts"]
    assert sum(counted.values()) == len(planned.resources) > 0


def test_plan_command_prints_the_inventory(plans, capsys):
    assert plan.main(["dev"]) == 0
    printed = capsys.readouterr().out
    assert printed == inventory.inventory_yaml(plans["dev"])
    assert "machineType" in printed and "sizing:" in printed


@pytest.mark.parametrize(("section", "text", "named"), [
    ("dataproc", "worker: e2-medium", "hydrostream:dataproc.worker = 'e2-medium'"),
    ("dataproc", "wokers: 3", "hydrostream:dataproc.wokers = 3"),
    ("network", "subnet_cidr: 10.0.0.0/33", "hydrostream:network.subnet_cidr = '10.0.0.0/33'"),
])
def test_plan_of_a_bad_stack_file_fails_naming_the_key(tmp_path, section, text, named):
    dev = (mocks.STACKS_DIR / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.dev.yaml").write_text(f"{dev}  hydrostream:{section}:\n    {text}\n"
                                              if f"hydrostream:{section}:" not in dev else
                                              dev.replace(f"hydrostream:{section}:\n",
                                                          f"hydrostream:{section}:\n    {text}\n"))
    result = subprocess.run([sys.executable, "-m", "infra.tools.plan", "dev", "--stacks-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=PROJECT_DIR, check=False)
    assert result.returncode == 1
    assert named in result.stderr
    assert "stack 'dev'" in result.stderr and "nothing was deployed" in result.stderr
    assert result.stdout == ""


# --- the inventory shows what matters, so a change reads as its own diff line ----------------------

def added_lines(before: mocks.Plan, after: mocks.Plan) -> list[str]:
    diff = difflib.unified_diff(inventory.inventory_yaml(before).splitlines(),
                                inventory.inventory_yaml(after).splitlines(), n=0, lineterm="")
    return [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]


def with_setting(stack: str, section: str, key: str, value) -> dict:
    config = mocks.stack_config(stack)
    config[f"hydrostream:{section}"] = {**config.get(f"hydrostream:{section}", {}), key: value}
    return config


def test_an_image_change_is_a_diff_line_of_the_vm_that_runs_it(plans, monkeypatch):
    before = plans["dev"]
    monkeypatch.setitem(catalog.SERVICES, "kafka",
                        dataclasses.replace(catalog.KAFKA, image="apache/kafka:9.9.9"))
    added = added_lines(before, mocks.run_plan("dev"))
    assert "image: apache/kafka:9.9.9" in added


def test_a_heap_change_is_a_diff_line_in_the_vm_and_in_sizing(plans):
    before = plans["dev"]
    after = mocks.run_plan("dev", with_setting("dev", "kafka", "machine", "e2-standard-8"))
    added = added_lines(before, after)
    (heap_opts,) = [line for line in added if line.startswith("KAFKA_HEAP_OPTS:")]
    new_heap = int(re.search(r"-Xmx(\d+)m", heap_opts).group(1))
    assert f"heap_mb: {new_heap}" in added
    assert new_heap != int(re.search(r"-Xmx(\d+)m", inventory.inventory_yaml(before)).group(1))
    assert any(line.startswith("machine: e2-standard-8") for line in added)


def test_cluster_and_job_properties_are_shown_whole(plans):
    before = plans["dev"]
    listed = inventory.inventory(before)
    (cluster,) = [r for r in listed["resources"] if r["type"] == "gcp:dataproc/cluster:Cluster"]
    (software,) = [v for k, v in cluster["values"].items()
                   if re.fullmatch(r"clusterConfig\.softwareConfig\.(override_?)?[pP]roperties", k)]
    declared = next(r for r in before.of_type("gcp:dataproc/cluster:Cluster")).inputs[
        "clusterConfig"]["softwareConfig"]
    declared = declared.get("overrideProperties") or declared["properties"]
    assert software == dict(sorted(declared.items())) and software
    jobs = [r for r in listed["resources"] if r["type"] == "gcp:dataproc/job:Job"]
    assert len(jobs) == 2
    for job in jobs:
        assert job["values"]["pysparkConfig.properties"]["spark.executor.instances"]
    workers = before.model.gcp.cluster.workers + 2
    after = mocks.run_plan("dev", with_setting("dev", "dataproc", "workers", workers))
    assert any(line.startswith("spark.executor.instances:") for line in added_lines(before, after))


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_each_vm_lists_the_catalog_containers_of_its_role(plans, stack):
    planned = plans[stack]
    vms = [r for r in inventory.inventory(planned)["resources"]
           if r["type"] == "gcp:compute/instance:Instance"]
    # One VM per role, kafka.brokers of them for the broker role (three on staging and prod).
    assert len(vms) == len(catalog.ROLES) - 1 + planned.settings.kafka.brokers
    for vm in vms:
        role = vm["values"]["labels.role"]
        shown = vm["cloud_config"]["containers"]
        assert {name: c["image"] for name, c in shown.items()} == {
            s.name: s.reference for s in catalog.services_for_role(role)}
        for service in catalog.services_for_role(role):
            # The cluster keys are each broker's own (node id, quorum: tests/infra/test_gcp_kafka.py).
            own = BROKER_OWN_ENV if service is catalog.KAFKA else ()
            fixed = {k: v for k, v in service.env.items() if k not in own}
            assert shown[service.name]["env"].items() >= fixed.items(), service.name
        ports = {f"{p.number}/{p.protocol}" for s in catalog.services_for_role(role) for p in s.ports}
        (firewall,) = [v for k, v in vm["cloud_config"]["units"].items() if "firewall" in k]
        assert set(firewall.split()[1:]) == ports
