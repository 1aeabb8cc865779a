"""scripts/kafka-broker-gcp.sh, scripts/replace-broker.sh's driver for a GCP stack: every tool it runs on a
broker VM logs in as the Kafka admin with the files kafka-start.sh wrote in the container's tmpfs.

gcloud's IAP SSH runs the command here (`sudo` dropped, the container's paths mapped into a folder), docker
exec runs the container's command line, and each Kafka tool is a stub that records the arguments it got:
what reaches the tool after both shells' quoting.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from infra.paths import PROJECT_DIR
from infra.services import kafka as kafka_service

SCRIPT = PROJECT_DIR / "scripts" / "kafka-broker-gcp.sh"
CONFIG = "/opt/kafka/config/server.properties"


def executable(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/bash\nset -euo pipefail\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def vm(tmp_path):
    """The broker VM's container as folders: Kafka's config and the admin's login files, tools that log."""
    root = tmp_path / "vm"
    (root / "opt/kafka/config").mkdir(parents=True)
    (root / "opt/kafka/config/server.properties").write_text("node.id=2\nprocess.roles=broker,controller\n")
    sasl = root / kafka_service.SASL_DIR.lstrip("/")
    sasl.mkdir(parents=True)
    (sasl / "admin.properties").write_text("sasl.mechanism=SCRAM-SHA-512\n")
    (sasl / "controller.properties").write_text("sasl.mechanism=PLAIN\n")
    for tool in ("kafka-metadata-quorum.sh", "kafka-topics.sh"):
        executable(root / "opt/kafka/bin" / tool, 'printf "%s\\n" "$@" >"$TOOL_ARGS"')
    stubs = tmp_path / "stubs"
    executable(stubs / "gcloud", f"""
while [[ $1 != --command ]]; do shift; done
command=${{2#sudo }}
for pair in "{kafka_service.SASL_DIR} {sasl}" "/opt/kafka {root}/opt/kafka"; do
  read -r from to <<<"$pair"
  command=${{command//"$from"/"$to"}}
done
exec bash -c "$command"
""")
    executable(stubs / "docker", """
[[ $1 == exec ]] && shift
while [[ $1 == -* ]]; do shift 2; done
shift  # the container
exec "$@"
""")
    return root, sasl, stubs


def run(vm, *args: str) -> tuple[list[str], subprocess.CompletedProcess]:
    root, _, stubs = vm
    log = root / "tool-args"
    done = subprocess.run(["bash", str(SCRIPT), "tool", *args], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120,
                          env={**os.environ, "STACK": "prod", "TOOL_ARGS": str(log),
                               "PATH": f"{stubs}:{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines(), done


def test_a_client_tool_logs_in_as_the_admin_on_the_client_listener(vm):
    _, sasl, _ = vm
    got, _ = run(vm, "1", "kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--describe",
                 "--under-replicated-partitions", "--topic", "a b")
    assert got == ["--command-config", f"{sasl}/admin.properties", "--bootstrap-server", "localhost:9092",
                   "--describe", "--under-replicated-partitions", "--topic", "a b"]


def test_a_controller_tool_logs_in_on_the_controller_listener(vm):
    _, sasl, _ = vm
    got, _ = run(vm, "3", "kafka-metadata-quorum.sh", "--bootstrap-controller", "10.0.0.1:9093",
                 "describe", "--status")
    assert got == ["--command-config", f"{sasl}/controller.properties", "--bootstrap-controller",
                   "10.0.0.1:9093", "describe", "--status"]


def test_add_controller_reads_the_nodes_own_config_with_the_admins_login_appended(vm):
    root, sasl, _ = vm
    got, _ = run(vm, "2", "kafka-metadata-quorum.sh", "--command-config", "@config",
                 "--bootstrap-controller", "10.0.0.1:9093", "add-controller")
    login = sasl / "server-login.properties"
    assert got == ["--command-config", str(login), "--bootstrap-controller", "10.0.0.1:9093",
                   "add-controller"]
    # The node's id and listeners, then the PLAIN login: on tmpfs, readable by its owner alone.
    assert login.read_text() == ((root / CONFIG.lstrip("/")).read_text()
                                 + (sasl / "controller.properties").read_text())
    assert stat.S_IMODE(login.stat().st_mode) == 0o600
