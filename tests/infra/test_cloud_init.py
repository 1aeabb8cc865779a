"""The service VMs' cloud-init: valid documents, the catalog's images and ports, no secret values,
boot scripts that pass shellcheck and behave (run here against stubbed system commands)."""

import base64
import hashlib
import io
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from hydrostream_jobs import contract

from infra import catalog
from infra.render import cloud_init, systemd, vm_inputs
from infra.services import kafka as kafka_service
from infra.services.influxdb import InfluxDbSpec
from infra.services.kafka import KafkaSpec, TopicSpec
from tests.ports import free_port

TEMPLATES = Path(cloud_init.__file__).resolve().parent / "templates"
ROLES = (catalog.BROKER, catalog.TSDB, catalog.MONITORING)

# A random stand-in for a secret value: it must never reach a document, a command line or a log.
SECRET_VALUE = f"value-{secrets.token_hex(16)}"
HEAP_MB = 1536
# The metrics agent's jar as the broker component uploads it (named by the lock's sha256).
AGENT_SHA256 = "7d61f737fd661610ccc14aea79764faa1ea94a340cbc8f0029b3d2edea3d80c1"
AGENT = vm_inputs.AgentJar(f"gs://hydro-broker-agents/agents/{AGENT_SHA256}/jmx_prometheus_javaagent-1.0.1.jar",
                           AGENT_SHA256)
TOPICS = (
    kafka_service.TopicSpec(contract.READINGS_TOPIC, partitions=6, retention_ms=259_200_000),
    kafka_service.TopicSpec(contract.DEAD_LETTER_TOPIC, partitions=2, retention_ms=1_209_600_000),
)
BUNDLE = vm_inputs.ConfigBundle("gs://hydro-config/monitoring/sha256-ab12.tar.gz",
                                 volumes=("prometheus-config", "grafana-provisioning"))
PROMETHEUS_YML = cloud_init.ConfigFile("prometheus-config", "prometheus.yml",
                                       "global:\n  scrape_interval: 15s\n")


def kafka(heap_mb: int, topics: tuple[TopicSpec, ...]) -> KafkaSpec:
    """A Kafka spec with these values (what `kafka_spec` computes from settings is tested apart)."""
    return KafkaSpec(service=catalog.KAFKA, heap_mb=heap_mb, topics=topics)


# A single broker: a one-voter dynamic quorum, as a one-broker stack's VM (and the local container) run it.
SINGLE = kafka_service.KafkaNode(1, "europe-west1-b", ("localhost:9093",), 1)


def influx(org: str, bucket: str, retention: str, memory_limit_mb: int) -> InfluxDbSpec:
    """An InfluxDB spec with these values."""
    return InfluxDbSpec(service=catalog.INFLUXDB, org=org, bucket=bucket, retention=retention,
                        memory_limit_mb=memory_limit_mb)


def secret_id(secret: str) -> str:
    return f"projects/sentinel-project/secrets/SENTINEL-{secret}"


def refs(*names: str) -> list[cloud_init.SecretRef]:
    return [cloud_init.SecretRef(name, secret_id(name)) for name in names]


SCOPED = refs(catalog.INFLUXDB_WRITE_TOKEN, catalog.INFLUXDB_READ_TOKEN)
KAFKA_USERS = ("hydro-admin", "hydro-producer", "hydro-consumer")
KAFKA_PASSWORDS = refs(*(f"kafka-password-{user}" for user in KAFKA_USERS))


def render(role: str) -> str:
    if role == catalog.BROKER:
        return cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS), SINGLE, KAFKA_PASSWORDS, agent=AGENT)
    if role == catalog.TSDB:
        return cloud_init.tsdb_cloud_init(influx("hydro-farm", "sensors", "30d", 700),
                                          refs(catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN),
                                          scoped_tokens=SCOPED)
    # With every alert receiver configured (prod): their optional secret files are all fetched.
    return cloud_init.monitoring_cloud_init(
        BUNDLE.volumes, refs(catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN,
                             *catalog.RECEIVER_SECRETS), [PROMETHEUS_YML])


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return {role: render(role) for role in ROLES}


def files(document: str) -> dict[str, str]:
    return {f["path"]: f["content"] for f in yaml.safe_load(document)["write_files"]}


def units(document: str) -> dict[str, str]:
    return {Path(p).name: c for p, c in files(document).items() if p.startswith("/etc/systemd/system/")}


def commands(unit: str, key: str) -> list[list[str]]:
    """The argument lists of a unit's `key=` lines, split the way systemd does for these lines."""
    joined = re.sub(r"\\\n", " ", unit)
    found = []
    for line in joined.splitlines():
        if line.startswith(f"{key}="):
            words = shlex.split(line[len(key) + 1:].lstrip("-"))
            found.append([w.replace("$$", "\0").replace("%%", "%").replace("\0", "$") for w in words])
    return found


def docker_run(unit: str) -> dict:
    """The parts of a unit's `docker run` command line."""
    (args,) = commands(unit, "ExecStart")
    assert args[:2] == ["/usr/bin/docker", "run"], args
    parsed: dict = {"env": {}, "volumes": [], "flags": []}
    rest = iter(args[2:])
    for arg in rest:
        if arg == "--rm":
            parsed["flags"].append(arg)
        elif arg == "--env":
            key, _, value = next(rest).partition("=")
            parsed["env"][key] = value
        elif arg == "--volume":
            parsed["volumes"].append(next(rest))
        elif arg.startswith("--"):
            parsed[arg[2:]] = next(rest)
        else:
            parsed["image"], parsed["command"] = arg, list(rest)
    return parsed


def role_services(role: str) -> list[catalog.Service]:
    return [s for s in catalog.SERVICES.values() if s.role in (role, catalog.EVERY_VM)]


def container_units(document: str) -> dict[str, dict]:
    """service name -> parsed docker run, for every unit that runs a container."""
    runs = {}
    for text in units(document).values():
        starts = commands(text, "ExecStart")
        if starts and starts[0][:2] == ["/usr/bin/docker", "run"]:
            run = docker_run(text)
            runs[run["name"]] = run
    return runs


def run_script(name: str, *args: str, stubs: Path, env: dict[str, str] | None = None):
    """Run a template script with stub commands first on PATH."""
    return subprocess.run(["bash", str(TEMPLATES / name), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", **(env or {})})


def stub(stubs: Path, name: str, body: str) -> None:
    """A stub command that logs its arguments to $STUB_LOG, then runs `body`."""
    stubs.mkdir(exist_ok=True)
    path = stubs / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >>"$STUB_LOG"\n{body}\n')
    path.chmod(0o755)


def calls(log: Path, name: str) -> list[str]:
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if line.split(" ")[0] == name]


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: these tests need it (Debian: {binary}; .ci/run installs it)")
    return path


# --- documents ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_document_passes_cloud_init_schema(role, documents, tmp_path):
    path = tmp_path / f"{role}.yaml"
    path.write_text(documents[role])
    result = subprocess.run([require("cloud-init"), "schema", "--config-file", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout
    assert documents[role].startswith("#cloud-config\n")


def test_cloud_init_schema_check_can_fail(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(render(catalog.TSDB).replace("permissions: '0644'", "permissions: 644", 1))
    result = subprocess.run([require("cloud-init"), "schema", "--config-file", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


@pytest.mark.parametrize("role", ROLES)
def test_document_fits_in_a_metadata_value(role, documents):
    assert len(documents[role].encode()) < 256 * 1024


def test_an_oversized_document_is_refused():
    huge = cloud_init.ConfigFile("prometheus-config", "rules/huge.yml", "x" * (256 * 1024) + "\n")
    with pytest.raises(ValueError, match="metadata value limit"):
        cloud_init.monitoring_cloud_init(
            BUNDLE.volumes, refs(catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN), [huge])


def test_scripts_are_embedded_from_the_template_files(documents):
    for document in documents.values():
        for path, content in files(document).items():
            if path.endswith(".sh"):
                assert content == (TEMPLATES / Path(path).name).read_text(), path


def test_every_shell_script_passes_shellcheck(documents, tmp_path):
    shellcheck = require("shellcheck")
    scripts = sorted(TEMPLATES.glob("*.sh"))
    assert {p.name for p in scripts} >= {"mount-data-disk.sh", "fetch-secret.sh", "fetch-config.sh",
                                         "kafka-setup.sh", "kafka-topics.sh"}
    for role, document in documents.items():
        folder = tmp_path / role
        folder.mkdir()
        for path, content in files(document).items():
            if content.startswith("#!"):
                (folder / Path(path).name).write_text(content)
                scripts.append(folder / Path(path).name)
    for script in scripts:
        assert "set -euo pipefail" in script.read_text(), script
        result = subprocess.run([shellcheck, "--external-sources", "--shell=bash", script.name],
                                cwd=script.parent, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{script}:\n{result.stdout}{result.stderr}"


# --- the catalog, rendered ----------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_units_run_exactly_the_catalog_images_of_the_role(role, documents):
    runs = container_units(documents[role])
    images = {name: run["image"] for name, run in runs.items()}
    assert images == {s.name: s.reference for s in role_services(role)}
    # Kafka, Prometheus, Alertmanager and node-exporter by the digest infra/images.lock records.
    locked = {"kafka", "prometheus", "alertmanager", "node-exporter"}
    for name, image in images.items():
        assert re.fullmatch(r"\S+:[\w.-]+@sha256:[0-9a-f]{64}", image) if name in locked else "@" not in image
    runcmd = yaml.safe_load(documents[role])["runcmd"]
    assert runcmd[0] == ["systemctl", "daemon-reload"]
    assert runcmd[1][:4] == ["systemctl", "enable", "--now", "--no-block"]
    assert {f"hydrostream-{s.name}.service" for s in role_services(role)} <= set(runcmd[1][4:])


@pytest.mark.parametrize("role", ROLES)
def test_the_host_firewall_opens_exactly_the_catalog_ports_of_the_role(role, documents):
    (args,) = commands(units(documents[role])["hydrostream-host-firewall.service"], "ExecStart")
    assert args[1].endswith("/open-host-ports.sh")
    assert set(args[2:]) == {f"{p.number}/{p.protocol}" for s in role_services(role) for p in s.ports}


@pytest.mark.parametrize("role", ROLES)
def test_containers_run_as_the_catalog_says(role, documents):
    runs = container_units(documents[role])
    for service in role_services(role):
        run = runs[service.name]
        assert run["network"] == "host" and "--rm" in run["flags"]
        assert run.get("user") == service.user
        env = service.env
        if service is catalog.KAFKA:
            # A broker is a node of its dynamic quorum (here one of one), started by kafka-start.sh.
            script, *script_args = kafka_service.kafka_start_command(SINGLE)
            assert run["command"] == ["bash", f"/opt/hydrostream/{script}", *script_args]
            env = {**env, **SINGLE.env}
        else:
            assert run["command"] == list(service.command)
        for key, value in env.items():
            assert run["env"][key] == value, (service.name, key)
        check = service.health_check
        kind, *health = check.command
        assert run["health-cmd"] == (health[0] if kind == "CMD-SHELL" else shlex.join(health))
        assert (run["health-interval"], run["health-timeout"], run["health-retries"],
                run["health-start-period"]) == (f"{check.interval_s}s", f"{check.timeout_s}s",
                                                str(check.retries), f"{check.start_period_s}s")
        data_volumes = [v for v in run["volumes"] if v.startswith("/mnt/disks/data/")]
        assert sorted(data_volumes) == sorted(
            f"/mnt/disks/data/{v.name}:{v.container_path}:{'ro' if v.name in BUNDLE.volumes else 'rw'}"
            for v in service.volumes)


@pytest.mark.parametrize("role", ROLES)
def test_only_the_catalog_host_mounts_reach_the_host_read_only_following_its_mounts(role, documents):
    for name, run in container_units(documents[role]).items():
        service = catalog.SERVICES[name]
        host = [v for v in run["volumes"]
                if not v.startswith(("/mnt/disks/data/", catalog.SECRETS_DIR + "/"))]
        # A Java agent's folder is the renderer's mount (the jar it checked, the config it wrote).
        agent = ([catalog.HostMount(cloud_init.agent_host_dir(service), service.java_agent.folder)]
                 if service.java_agent is not None else [])
        # The broker's command is a script of the host's, which it runs from there.
        scripts = [catalog.HostMount(systemd.BIN_DIR, "/opt/hydrostream")] if service is catalog.KAFKA else []
        # rslave: a filesystem the host mounts later (a new disk) shows up inside too.
        assert host == [f"{m.source}:{m.target}:ro,rslave"
                        for m in (*service.host_mounts, *scripts, *agent)], name
        assert run.get("pid") == ("host" if service.host_pid else None), name
    assert "/:/host:ro,rslave" in container_units(documents[role])[catalog.NODE_EXPORTER.name]["volumes"]


def test_unit_quoting_keeps_every_character():
    odd = ['a b', 'say "hi"', "back\\slash", "100%", "$HOME", "${HOST_INTERNAL_IP}", "semi;colon", ""]
    line = systemd.systemd_command(odd)
    assert commands(f"ExecStart={line}\n", "ExecStart") == [odd]
    assert "$HOME" not in line.replace("$$HOME", "") and "100%%" in line


# --- secrets ------------------------------------------------------------------------------------

def test_no_secret_value_reaches_a_document(documents):
    for role, document in documents.items():
        assert SECRET_VALUE not in document
        for run in container_units(document).values():
            for key, value in run["env"].items():
                if re.search("PASSWORD|TOKEN|SECRET", key):
                    assert key.endswith("_FILE") and value.startswith(catalog.SECRETS_DIR + "/"), (role, key)
        for match in re.finditer(r"[A-Z0-9_]*(PASSWORD|TOKEN|SECRET)[A-Z0-9_]*=(\S*)", document):
            assert match.group(0).split("=")[0].endswith("_FILE"), (role, match.group(0))
            assert match.group(2).startswith(catalog.SECRETS_DIR + "/"), (role, match.group(0))
        # Secret resource names appear only where a secret is fetched, or a scoped token stored.
        for line in document.splitlines():
            if "SENTINEL-" in line:
                assert line.strip().startswith((
                    "ExecStartPre=/bin/bash /etc/hydrostream/bin/fetch-secret.sh ",
                    "ExecStart=/bin/bash /etc/hydrostream/bin/create-influxdb-tokens.sh ")), line
    assert secret_id(catalog.INFLUXDB_TOKEN) in documents[catalog.TSDB]


@pytest.mark.parametrize("role", (catalog.TSDB, catalog.MONITORING))
def test_secrets_are_fetched_by_resource_name_and_mounted_read_only(role, documents):
    for text in units(documents[role]).values():
        starts = commands(text, "ExecStart")
        if not (starts and starts[0][:2] == ["/usr/bin/docker", "run"]):
            continue
        run = docker_run(text)
        service = catalog.SERVICES[run["name"]]
        fetches = [c for c in commands(text, "ExecStartPre") if c[1].endswith("/fetch-secret.sh")]
        assert len(fetches) == len(service.secret_files)
        for secret_file, fetch in zip(service.secret_files, fetches, strict=True):
            host_path = f"{catalog.SECRETS_DIR}/{service.name}/{secret_file.secret}"
            owner = service.user or "0"
            # A scoped token is waited for: the InfluxDB VM adds it once InfluxDB is set up.
            scoped = secret_file.secret in {t.secret for t in catalog.SCOPED_TOKENS}
            assert fetch[2:] == [secret_id(secret_file.secret), host_path, f"{owner}:{owner}",
                                 *([str(cloud_init.SCOPED_TOKEN_WAIT_S)] if scoped else [])]
            assert f"{host_path}:{secret_file.container_path}:ro" in run["volumes"]


def test_receiver_secrets_not_configured_are_neither_fetched_nor_mounted():
    document = cloud_init.monitoring_cloud_init(
        BUNDLE.volumes, refs(catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN,
                             catalog.PAGERDUTY_ROUTING_KEY), [PROMETHEUS_YML])
    unit = units(document)[cloud_init.unit_name(catalog.ALERTMANAGER)]
    fetched = [c[2] for c in commands(unit, "ExecStartPre") if c[1].endswith("/fetch-secret.sh")]
    assert fetched == [secret_id(catalog.PAGERDUTY_ROUTING_KEY)]
    mounted = [v for v in docker_run(unit)["volumes"] if v.startswith(catalog.SECRETS_DIR)]
    assert mounted == [f"{catalog.SECRETS_DIR}/alertmanager/{catalog.PAGERDUTY_ROUTING_KEY}:"
                       f"{catalog.SECRETS_DIR}/{catalog.PAGERDUTY_ROUTING_KEY}:ro"]


def test_a_secret_ref_takes_a_resource_name_and_never_echoes_what_it_rejects():
    with pytest.raises(ValueError) as error:
        cloud_init.SecretRef(catalog.INFLUXDB_TOKEN, SECRET_VALUE)
    assert SECRET_VALUE not in str(error.value)
    with pytest.raises(ValueError, match="unknown secret"):
        cloud_init.SecretRef("aws-key", secret_id("aws-key"))


def test_a_role_needs_exactly_its_secrets():
    with pytest.raises(ValueError, match="influxdb-token"):
        cloud_init.tsdb_cloud_init(influx("o", "b", "30d", 512), refs(catalog.INFLUXDB_ADMIN_PASSWORD),
                                   scoped_tokens=SCOPED)
    with pytest.raises(ValueError, match="takes one SecretRef"):
        cloud_init.tsdb_cloud_init(influx("o", "b", "30d", 512), refs(*catalog.GENERATED_SECRETS),
                                   scoped_tokens=SCOPED)
    with pytest.raises(ValueError, match="scoped_tokens takes one SecretRef each"):
        cloud_init.tsdb_cloud_init(influx("o", "b", "30d", 512),
                                   refs(catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN),
                                   scoped_tokens=SCOPED[:1])


def secret_stubs(tmp_path: Path, filesystem: str = "tmpfs") -> Path:
    stubs = tmp_path / "bin"
    payload = base64.b64encode(SECRET_VALUE.encode()).decode()
    stub(stubs, "curl", f"""
case "$*" in
  *computeMetadata*token*) echo '{{"access_token":"ya29.TEST-TOKEN","expires_in":3599}}' ;;
  *secretmanager.googleapis.com*) cat >"$STUB_DIR/curl-config"
    printf '{{\\n  "name": "projects/1/secrets/s/versions/3",\\n  "payload": {{\\n    "data": "{payload}",\\n'
    printf '    "dataCrc32c": "123"\\n  }}\\n}}\\n' ;;
  *) exit 22 ;;
esac""")
    stub(stubs, "stat", f"echo {filesystem}")
    stub(stubs, "chown", "")
    return stubs


def test_fetch_secret_writes_the_value_only_into_a_private_file(tmp_path):
    stubs = secret_stubs(tmp_path)
    log, dest = tmp_path / "calls.log", tmp_path / "run" / "grafana" / "grafana-admin-password"
    result = run_script("fetch-secret.sh", secret_id("grafana-admin-password"), str(dest), "472:472",
                        stubs=stubs, env={"STUB_LOG": str(log), "STUB_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert dest.read_text() == SECRET_VALUE
    assert stat.S_IMODE(dest.stat().st_mode) == 0o400
    assert calls(log, "chown")[0].split(" ")[1] == "472:472"
    encoded = base64.b64encode(SECRET_VALUE.encode()).decode()
    for text in (result.stdout, result.stderr, log.read_text()):
        assert SECRET_VALUE not in text and encoded not in text and "TEST-TOKEN" not in text
    assert (tmp_path / "curl-config").read_text() == 'header = "Authorization: Bearer ya29.TEST-TOKEN"\n'
    assert any(f"https://secretmanager.googleapis.com/v1/{secret_id('grafana-admin-password')}"
               "/versions/latest:access" in call for call in calls(log, "curl"))
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def test_fetch_secret_refuses_a_folder_that_is_not_a_tmpfs(tmp_path):
    stubs = secret_stubs(tmp_path, filesystem="ext2/ext3")
    dest = tmp_path / "disk" / "influxdb-token"
    result = run_script("fetch-secret.sh", secret_id("influxdb-token"), str(dest), "0:0", stubs=stubs,
                        env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})
    assert result.returncode != 0 and "tmpfs" in result.stderr
    assert not dest.exists()


def flaky_secret_stubs(tmp_path: Path, failures: int) -> Path:
    """Secret Manager answers 404 (no version yet) `failures` times, then the value."""
    stubs = secret_stubs(tmp_path)
    payload = base64.b64encode(SECRET_VALUE.encode()).decode()
    stub(stubs, "curl", f"""
case "$*" in
  *computeMetadata*token*) echo '{{"access_token":"ya29.TEST-TOKEN","expires_in":3599}}' ;;
  *secretmanager.googleapis.com*)
    cat >/dev/null
    count=$(( $(cat "$STUB_DIR/accesses" 2>/dev/null || echo 0) + 1 ))
    echo "$count" >"$STUB_DIR/accesses"
    [[ $count -gt {failures} ]] || exit 22
    printf '{{"payload": {{"data": "{payload}"}}}}\\n' ;;
  *) exit 22 ;;
esac""")
    stub(stubs, "sleep", "")
    return stubs


@pytest.mark.parametrize(("failures", "wait_s", "fetched"),
                         [(2, "240", True), (1, "5", False), (1, None, False)])
def test_fetch_secret_waits_bounded_for_a_first_version(tmp_path, failures, wait_s, fetched):
    stubs = flaky_secret_stubs(tmp_path, failures)
    dest = tmp_path / "run" / "grafana" / "influxdb-read-token"
    result = run_script("fetch-secret.sh", secret_id("influxdb-read-token"), str(dest), "472:472",
                        *([wait_s] if wait_s else []), stubs=stubs,
                        env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})
    assert (result.returncode == 0) == fetched == dest.exists(), result.stderr
    accesses = int((tmp_path / "accesses").read_text())
    assert accesses == (failures + 1 if fetched else 1)
    if fetched:
        assert dest.read_text() == SECRET_VALUE and "waiting" in result.stderr
    else:
        assert "has no readable version" in result.stderr


def test_the_tsdb_vm_creates_the_scoped_tokens_after_influxdb(documents):
    found = units(documents[catalog.TSDB])
    unit = found["hydrostream-influxdb-tokens.service"]
    (args,) = commands(unit, "ExecStart")
    assert args[1:] == ["/etc/hydrostream/bin/create-influxdb-tokens.sh", "influxdb",
                        "/run/secrets/hydrostream/influxdb-token", "admin", "hydro-farm", "sensors",
                        "/mnt/disks/data/influxdb-tokens",
                        f"write:hydrostream-consumer-write:{secret_id(catalog.INFLUXDB_WRITE_TOKEN)}",
                        f"read:hydrostream-grafana-read:{secret_id(catalog.INFLUXDB_READ_TOKEN)}"]
    lines = unit.splitlines()
    assert "hydrostream-influxdb.service" in next(line for line in lines if line.startswith("After="))
    assert "Restart=on-failure" in lines
    assert "hydrostream-influxdb-tokens.service" in yaml.safe_load(documents[catalog.TSDB])["runcmd"][1]
    shipped = {Path(path).name for path in files(documents[catalog.TSDB])}
    assert {"create-influxdb-tokens.sh", "influxdb-token.sh", "gce-metadata.sh"} <= shipped
    # The other roles neither create nor receive the operator token.
    for role in (catalog.BROKER, catalog.MONITORING):
        assert "influxdb-tokens" not in documents[role]
        assert secret_id(catalog.INFLUXDB_TOKEN) not in documents[role]


OPERATOR_TOKEN = f"operator-{secrets.token_hex(8)}"
BUCKET_ID = "0a1b2c3d4e5f6a7b"


def influx_stubs(tmp_path: Path) -> Path:
    """`docker exec` runs the in-container script here; `influx` keeps its tokens in files and lists them as
    the real CLI does (tests/influxdb runs the script against the real one)."""
    stubs = tmp_path / "bin"
    (tmp_path / "auths").mkdir(exist_ok=True)
    stub(stubs, "docker", 'while [[ $1 != bash ]]; do shift; done\nexec "$@"')
    stub(stubs, "influx", f"""
if [[ "$1" != ping && "$INFLUX_TOKEN" != "{OPERATOR_TOKEN}" ]]; then
  echo "influx: unauthorized" >&2
  exit 1
fi
printable() {{
  printf '\\t{{\\n\\t\\t"id": "%s",\\n\\t\\t"description": "%s",\\n' "$1" "$2"
  printf '\\t\\t"token": "%s",\\n\\t\\t"status": "active",\\n\\t\\t"userName": "admin",\\n' "$3"
  printf '\\t\\t"userID": "0c0c0c0c0c0c0c0c",\\n'
  printf '\\t\\t"permissions": [\\n\\t\\t\\t"%s"\\n\\t\\t]\\n\\t}}' "$4"
}}
case "$1 $2" in
  "ping ") echo OK ;;
  "bucket list")
    printf '[\\n\\t{{\\n\\t\\t"links": {{"labels": "/api/v2/buckets/{BUCKET_ID}/labels"}},\\n'
    printf '\\t\\t"id": "{BUCKET_ID}",\\n\\t\\t"orgID": "ffffffffffffffff",\\n'
    printf '\\t\\t"name": "sensors"\\n\\t}}\\n]\\n' ;;
  "auth list")
    echo "["
    first=1
    for f in "$STUB_DIR"/auths/*; do
      [[ -e "$f" ]] || continue
      [[ $first == 1 ]] || echo ","
      first=0
      cat "$f"
    done
    echo "]" ;;
  "auth create")
    while [[ $# -gt 0 ]]; do
      case "$1" in
        --description) description=$2 ;;
        --write-bucket|--read-bucket) perm="${{1:2:-7}}:orgs/ffffffffffffffff/buckets/$2" ;;
      esac
      shift
    done
    n=$(ls "$STUB_DIR/auths" | wc -l)
    printable "id$n" "$description" "tok_${{description}}-$RANDOM==" "$perm" >"$STUB_DIR/auths/$n"
    cat "$STUB_DIR/auths/$n"; echo ;;
  *) exit 1 ;;
esac""")
    stub(stubs, "curl", """
case "$*" in
  *computeMetadata*token*) echo '{"access_token":"ya29.TEST-TOKEN","expires_in":3599}' ;;
  *secretmanager.googleapis.com*:addVersion*)
    n=$(ls "$STUB_DIR" | grep -c '^added-' || true)
    cat >"$STUB_DIR/added-$n.json"
    for arg in "$@"; do [[ "$arg" != /dev/fd/* ]] || cat "$arg" >"$STUB_DIR/added-$n.header"; done
    for arg in "$@"; do [[ "$arg" != https://* ]] || echo "$arg" >"$STUB_DIR/added-$n.url"; done
    echo '{"name": "projects/1/secrets/s/versions/1"}' ;;
  *) exit 22 ;;
esac""")
    return stubs


def create_tokens(tmp_path: Path, stubs: Path) -> subprocess.CompletedProcess:
    operator = tmp_path / "operator-token"
    operator.write_text(OPERATOR_TOKEN)
    return run_script("create-influxdb-tokens.sh", "influxdb", str(operator), "admin", "hydro-farm",
                      "sensors", str(tmp_path / "state"),
                      f"write:hydrostream-consumer-write:{secret_id(catalog.INFLUXDB_WRITE_TOKEN)}",
                      f"read:hydrostream-grafana-read:{secret_id(catalog.INFLUXDB_READ_TOKEN)}",
                      stubs=stubs, env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})


def added_versions(tmp_path: Path) -> list[tuple[str, str, str]]:
    """(secret url, decoded payload, header) of each addVersion call."""
    found = []
    for body in sorted(tmp_path.glob("added-*.json")):
        data = json.loads(body.read_text())["payload"]["data"]
        found.append((body.with_suffix(".url").read_text().strip(), base64.b64decode(data).decode(),
                      body.with_suffix(".header").read_text()))
    return found


def test_scoped_tokens_are_created_once_and_added_as_secret_versions(tmp_path):
    stubs = influx_stubs(tmp_path)
    log = tmp_path / "calls.log"
    result = create_tokens(tmp_path, stubs)
    assert result.returncode == 0, result.stderr
    creates = [c for c in calls(log, "influx") if c.startswith("influx auth create")]
    assert [c.split("--description ")[1].split(" ")[0] for c in creates] == [
        "hydrostream-consumer-write", "hydrostream-grafana-read"]
    assert f"--write-bucket {BUCKET_ID}" in creates[0] and f"--read-bucket {BUCKET_ID}" in creates[1]
    assert all("--user admin" in c and "--org hydro-farm" in c for c in creates)
    tokens = {json.loads(f.read_text().replace("\t", ""))["description"]: json.loads(f.read_text())["token"]
              for f in (tmp_path / "auths").iterdir()}
    added = added_versions(tmp_path)
    base = "https://secretmanager.googleapis.com/v1/"
    assert [(url, value) for url, value, _ in added] == [
        (f"{base}{secret_id(catalog.INFLUXDB_WRITE_TOKEN)}:addVersion", tokens["hydrostream-consumer-write"]),
        (f"{base}{secret_id(catalog.INFLUXDB_READ_TOKEN)}:addVersion", tokens["hydrostream-grafana-read"])]
    assert {header for _, _, header in added} == {'header = "Authorization: Bearer ya29.TEST-TOKEN"\n'}

    # A reboot: the tokens are found again by description, and the secrets already hold them.
    result = create_tokens(tmp_path, stubs)
    assert result.returncode == 0, result.stderr
    assert len([c for c in calls(log, "influx") if c.startswith("influx auth create")]) == 2
    assert len(added_versions(tmp_path)) == 2 and "already holds" in result.stdout
    # A lost state (a new data disk would lose the database too): the same tokens are stored again.
    for stamp in (tmp_path / "state").iterdir():
        stamp.unlink()
    assert create_tokens(tmp_path, stubs).returncode == 0
    assert [value for _, value, _ in added_versions(tmp_path)][2:] == [
        tokens["hydrostream-consumer-write"], tokens["hydrostream-grafana-read"]]
    everything = log.read_text() + result.stdout + result.stderr
    for secret in (OPERATOR_TOKEN, *tokens.values()):
        assert secret not in everything


def test_scoped_tokens_need_the_operator_token_and_a_bucket(tmp_path):
    stubs = influx_stubs(tmp_path)
    (tmp_path / "operator-token").write_text("wrong")
    result = run_script("create-influxdb-tokens.sh", "influxdb", str(tmp_path / "operator-token"), "admin",
                        "hydro-farm", "sensors", str(tmp_path / "state"),
                        f"write:hydrostream-consumer-write:{secret_id(catalog.INFLUXDB_WRITE_TOKEN)}",
                        stubs=stubs, env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})
    assert result.returncode != 0 and added_versions(tmp_path) == []
    assert "unauthorized" in result.stderr and not list((tmp_path / "auths").iterdir())
    bad = run_script("create-influxdb-tokens.sh", "influxdb", "f", "admin", "o", "b", str(tmp_path / "s"),
                     "write:desc:not-a-secret", stubs=stubs, env={"STUB_LOG": str(tmp_path / "calls.log")})
    assert bad.returncode == 2 and "projects/P/secrets/S" in bad.stderr


# --- the data disk ------------------------------------------------------------------------------

def disk_stubs(tmp_path: Path, blkid_exit: int, blkid_output: str = "", mounted: bool = False) -> Path:
    stubs = tmp_path / "bin"
    stub(stubs, "blkid", f"printf '{blkid_output}'\nexit {blkid_exit}")
    stub(stubs, "mountpoint", f"exit {0 if mounted else 1}")
    for name in ("mkfs.ext4", "mount", "resize2fs"):
        stub(stubs, name, "")
    return stubs


@pytest.mark.parametrize(("case", "blkid_exit", "blkid_output", "mounted", "formats", "mounts"), [
    ("blank disk", 2, "", False, True, True),
    ("ext4 disk", 0, "DEVNAME=/dev/sdb\\nTYPE=ext4\\n", False, False, True),
    ("already mounted", 0, "TYPE=ext4\\n", True, False, False),
    ("other filesystem", 0, "DEVNAME=/dev/sdb\\nTYPE=xfs\\n", False, False, False),
    ("partition table", 0, "DEVNAME=/dev/sdb\\nPTTYPE=gpt\\n", False, False, False),
    ("probe error", 4, "", False, False, False),
    ("ambiguous probe", 8, "", False, False, False),
])
def test_the_data_disk_is_formatted_only_when_blank(case, blkid_exit, blkid_output, mounted, formats, mounts,
                                                    tmp_path):
    device = tmp_path / "google-data"
    device.write_bytes(bytes(64 * 1024))
    log = tmp_path / "calls.log"
    stubs = disk_stubs(tmp_path, blkid_exit, blkid_output, mounted)
    result = run_script("mount-data-disk.sh", str(device), str(tmp_path / "mnt"), stubs=stubs,
                        env={"STUB_LOG": str(log)})
    mkfs = f"mkfs.ext4 -m 0 -E lazy_itable_init=0,lazy_journal_init=0,discard {device}"
    assert calls(log, "mkfs.ext4") == ([mkfs] if formats else []), case
    assert len(calls(log, "mount")) == (1 if mounts else 0), case
    assert (result.returncode == 0) == (mounts or mounted), (case, result.stderr)


def test_an_unreadable_device_is_not_formatted(tmp_path):
    device = tmp_path / "google-data"
    device.mkdir()  # blkid finds nothing, and reading it fails
    log = tmp_path / "calls.log"
    result = run_script("mount-data-disk.sh", str(device), str(tmp_path / "mnt"),
                        stubs=disk_stubs(tmp_path, 2), env={"STUB_LOG": str(log)})
    assert result.returncode != 0
    assert calls(log, "mkfs.ext4") == [] and calls(log, "mount") == []


@pytest.mark.parametrize("role", ROLES)
def test_the_data_disk_unit_mounts_the_attached_disk(role, documents):
    (args,) = commands(units(documents[role])["hydrostream-data-disk.service"], "ExecStart")
    assert args[1:] == ["/etc/hydrostream/bin/mount-data-disk.sh", "/dev/disk/by-id/google-data",
                        "/mnt/disks/data"]
    other = cloud_init.DataDisk(device_name="kafka-log", mount_path="/mnt/disks/kafka")
    document = cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS), SINGLE, KAFKA_PASSWORDS, data_disk=other,
                                            agent=AGENT)
    (args,) = commands(units(document)["hydrostream-data-disk.service"], "ExecStart")
    assert args[2:] == ["/dev/disk/by-id/google-kafka-log", "/mnt/disks/kafka"]
    kafka_volumes = container_units(document)["kafka"]["volumes"]
    assert "/mnt/disks/kafka/kafka-data:/var/lib/kafka/data:rw" in kafka_volumes


@pytest.mark.parametrize("mounted", [True, False])
def test_volume_folders_are_made_only_on_the_mounted_disk(mounted, tmp_path):
    stubs, log = disk_stubs(tmp_path, 0, mounted=mounted), tmp_path / "calls.log"
    stub(stubs, "chown", "")
    folder = tmp_path / "mnt" / "kafka-data"
    result = run_script("volume-dirs.sh", str(tmp_path / "mnt"), "1000:1000", str(folder), stubs=stubs,
                        env={"STUB_LOG": str(log)})
    assert (result.returncode == 0) == mounted == folder.is_dir()
    assert calls(log, "chown") == ([f"chown 1000:1000 {folder}"] if mounted else [])


# --- Kafka --------------------------------------------------------------------------------------

def test_kafka_heap_is_the_given_heap(documents):
    env = container_units(documents[catalog.BROKER])["kafka"]["env"]
    assert env["KAFKA_HEAP_OPTS"] == f"-Xms{HEAP_MB}m -Xmx{HEAP_MB}m"


def probe_exit(health_cmd: str, port: int, listening: bool) -> int:
    """Exit status of a health command, as Docker runs `--health-cmd` (sh -c), against `port`."""
    command = health_cmd.replace(f"/{catalog.KAFKA.port('kafka')}", f"/{port}")
    assert command != health_cmd, "the probe does not name the broker's port"
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        if listening:
            server.listen()
        return subprocess.run(["sh", "-c", command], capture_output=True, timeout=30).returncode


def test_the_kafka_health_check_starts_no_jvm_and_fails_when_nothing_listens(documents):
    health_cmd = container_units(documents[catalog.BROKER])["kafka"]["health-cmd"]
    # Every Kafka CLI is a JVM that would inherit the broker's KAFKA_HEAP_OPTS every interval.
    assert not re.search(r"kafka-[a-z-]+\.sh|\bjava\b", health_cmd), health_cmd
    port = free_port()
    assert probe_exit(health_cmd, port, listening=True) == 0
    assert probe_exit(health_cmd, port, listening=False) != 0


def test_kafka_advertises_the_internal_ip_read_from_the_metadata_server(documents, tmp_path):
    kafka_unit = units(documents[catalog.BROKER])["hydrostream-kafka.service"]
    env = docker_run(kafka_unit)["env"]
    assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://${{HOST_INTERNAL_IP}}:{catalog.KAFKA.port('kafka')}"
    assert not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", kafka_unit)
    # Each start first writes the IP into the file the unit reads before `docker run`.
    assert "EnvironmentFile=-/run/hydrostream/host.env" in kafka_unit.splitlines()
    writer = commands(kafka_unit, "ExecStartPre")[1]
    assert writer[1:] == ["/etc/hydrostream/bin/host-env.sh", "/run/hydrostream/host.env"]

    stubs, log = tmp_path / "bin", tmp_path / "calls.log"
    stub(stubs, "curl", 'case "$*" in *network-interfaces/0/ip*) echo 10.128.0.7 ;; *) exit 22 ;; esac')
    result = run_script("host-env.sh", str(tmp_path / "host.env"), stubs=stubs, env={"STUB_LOG": str(log)})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "host.env").read_text() == "HOST_INTERNAL_IP=10.128.0.7\n"
    assert "Metadata-Flavor: Google" in calls(log, "curl")[0]


def run_kafka_setup(documents, tmp_path: Path) -> tuple[list[str], Path, Path]:
    """Run the broker's topics unit as its document says, the container's scripts being the templates and its
    SECRETS_DIR a folder of test passwords; returns the unit's arguments, the calls log and the passwords."""
    (args,) = commands(units(documents[catalog.BROKER])["hydrostream-kafka-topics.service"], "ExecStart")
    stubs, tools, log = tmp_path / "bin", tmp_path / "kafka-bin", tmp_path / "calls.log"
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for user in KAFKA_USERS:
        (secrets / f"kafka-password-{user}").write_text(f"Pw{user.replace('-', '')}1\n")
    # docker exec --env KAFKA_OPTS= CONTAINER bash /opt/hydrostream/SCRIPT ARGS: the stub runs the template
    # of that name here, with the container's secrets folder mapped to the test's, against stub Kafka tools.
    stub(stubs, "docker", f'shift 5; script=$1; shift; args=(); for a in "$@"; do '
                          f'[[ $a == {catalog.SECRETS_DIR} ]] && a={secrets}; args+=("$a"); done; '
                          f'exec bash {TEMPLATES}/"${{script##*/}}" "${{args[@]}}"')
    stub_kafka_tools(tools, replication_factor=1)
    stub(tools, "kafka-run-class.sh", 'cat "${1#@}" >>"$STUB_LOG"')
    stub(tools, "kafka-acls.sh", "")
    # The unit's own command line, its docker the stub.
    assert args[0] == "/usr/bin/docker"
    result = subprocess.run([str(stubs / "docker"), *args[1:]], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_LOG": str(log),
                                 "KAFKA_BIN": str(tools)})
    assert result.returncode == 0, result.stderr
    return args, log, secrets


def test_kafka_topics_are_created_idempotently_with_the_given_partitions_and_retention(documents, tmp_path):
    args, log, _ = run_kafka_setup(documents, tmp_path)
    # In the broker's container, KAFKA_OPTS cleared: the tools' JVMs must not start the broker's metrics
    # agent on its taken port.
    assert args[1:7] == ["exec", "--env", "KAFKA_OPTS=", catalog.KAFKA.name, "bash",
                         "/opt/hydrostream/kafka-setup.sh"]
    assert args[7] == f"localhost:{catalog.KAFKA.port('kafka')}"
    creates = [shlex.split(c) for c in calls(log, "kafka-topics.sh") if "--create" in c]
    assert len(creates) == len(TOPICS)
    for topic, create in zip(TOPICS, creates, strict=True):
        assert "--if-not-exists" in create
        assert create[create.index("--topic") + 1] == topic.name
        assert create[create.index("--partitions") + 1] == str(topic.partitions)
        assert create[create.index("--config") + 1] == f"retention.ms={topic.retention_ms}"
    alters = [c for c in calls(log, "kafka-configs.sh") if "--alter" in c]
    assert [f"retention.ms={t.retention_ms}" in a for t, a in zip(TOPICS, alters, strict=True)] == [True] * 2


def test_the_topics_unit_logs_in_as_the_admin_and_gives_each_job_its_password_and_acls(documents, tmp_path):
    _, log, secrets = run_kafka_setup(documents, tmp_path)
    # Every tool logs in as the admin, with the client config made from the admin's password file.
    for tool in ("kafka-topics.sh", "kafka-acls.sh"):
        assert calls(log, tool) and all("--command-config " in call for call in calls(log, tool)), tool
    # Each job's user gets its own password (through an argument file, never a command line) ...
    text = log.read_text()
    for user in ("hydro-producer", "hydro-consumer"):
        password = (secrets / f"kafka-password-{user}").read_text().strip()
        assert f'"SCRAM-SHA-512=[password={password}]"' in text
        assert password not in " ".join(calls(log, "kafka-run-class.sh"))
    # ... and exactly its ACLs: the producer writes the readings topic, the consumer reads it.
    acls = sorted(" ".join(call.split()[call.split().index("--allow-principal"):])
                  for call in calls(log, "kafka-acls.sh"))
    topic = contract.READINGS_TOPIC
    assert acls == [
        f"--allow-principal User:hydro-consumer --operation Read --operation Describe --topic {topic}",
        f"--allow-principal User:hydro-producer --operation Write --operation Describe --topic {topic}",
    ]


def stub_kafka_tools(tools: Path, replication_factor: int) -> None:
    """Kafka's topic and config tools; --describe reports every topic with `replication_factor`."""
    stub(tools, "kafka-topics.sh",
         'case "$*" in *--describe*) printf "Topic: t\\tTopicId: x\\tPartitionCount: 6\\t'
         f'ReplicationFactor: {replication_factor}\\tConfigs: min.insync.replicas=2\\n" ;; esac')
    stub(tools, "kafka-configs.sh", "")


REPLICATED = tuple(kafka_service.TopicSpec(t.name, t.partitions, t.retention_ms, replication_factor=3,
                                        min_insync_replicas=2) for t in TOPICS)
VOTERS = ("10.20.0.11:9093", "10.20.0.12:9093", "10.20.0.13:9093")


def run_topics_script(tmp_path: Path, topics, described_replication: int):
    tools, log = tmp_path / "kafka-bin", tmp_path / "calls.log"
    stub_kafka_tools(tools, described_replication)
    result = run_script("kafka-topics.sh", "localhost:9092", *(t.spec for t in topics),
                        stubs=tmp_path / "bin", env={"STUB_LOG": str(log), "KAFKA_BIN": str(tools)})
    return result, log


def test_replicated_topics_are_created_with_their_replicas_and_min_isr(tmp_path):
    result, log = run_topics_script(tmp_path, REPLICATED, described_replication=3)
    assert result.returncode == 0, result.stderr
    creates = [shlex.split(c) for c in calls(log, "kafka-topics.sh") if "--create" in c]
    assert [c[c.index("--topic") + 1] for c in creates] == [contract.READINGS_TOPIC,
                                                            contract.DEAD_LETTER_TOPIC]
    for create in creates:
        assert create[create.index("--replication-factor") + 1] == "3"
        configs = [create[i + 1] for i, word in enumerate(create) if word == "--config"]
        assert "min.insync.replicas=2" in configs
    alters = [c for c in calls(log, "kafka-configs.sh") if "--alter" in c]
    assert len(alters) == 2 and all("min.insync.replicas=2" in a for a in alters)


def test_a_topic_that_exists_with_fewer_replicas_fails_the_script_by_name(tmp_path):
    # --if-not-exists keeps an older single-replica topic: it must not pass for replicated.
    result, _ = run_topics_script(tmp_path, REPLICATED, described_replication=1)
    assert result.returncode != 0
    assert f"topic {contract.READINGS_TOPIC} has replication factor 1, wanted 3" in result.stderr


def test_a_three_node_broker_names_its_id_rack_and_the_whole_quorum(tmp_path):
    node = kafka_service.KafkaNode(2, "europe-west1-c", VOTERS, min_insync_replicas=2)
    document = cloud_init.broker_cloud_init(kafka(HEAP_MB, REPLICATED), node, KAFKA_PASSWORDS, agent=AGENT)
    env = container_units(document)["kafka"]["env"]
    assert env["KAFKA_NODE_ID"] == "2"
    assert env["KAFKA_BROKER_RACK"] == "europe-west1-c"
    # A dynamic quorum (KIP-853): the voters are found through the controllers, never listed statically.
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    assert env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] == ",".join(VOTERS)
    # The internal topics too: consumer offsets and transaction state on every broker, two in sync.
    assert (env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"],
            env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"],
            env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == ("3", "3", "3")
    assert (env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("2", "2")
    assert env["CLUSTER_ID"] == catalog.KAFKA_CLUSTER_ID
    (args,) = commands(units(document)["hydrostream-kafka-topics.service"], "ExecStart")
    assert args[10:13] == [f"{contract.READINGS_TOPIC}:6:259200000:3:2",
                           f"{contract.DEAD_LETTER_TOPIC}:2:1209600000:3:2", "--"]


def test_a_cluster_node_formats_its_storage_with_the_format_script_and_every_initial_controller():
    node = kafka_service.KafkaNode(2, "europe-west1-c", VOTERS, min_insync_replicas=2)
    document = cloud_init.broker_cloud_init(kafka(HEAP_MB, REPLICATED), node, KAFKA_PASSWORDS, agent=AGENT)
    run = container_units(document)["kafka"]
    # The image's own entrypoint would format without a quorum flag, which Kafka 3.9 refuses.
    # It formats with the admin's SCRAM credential and starts the broker with the admin's login, both made
    # from the admin's password file, into a tmpfs folder of the container.
    assert run["command"] == ["bash", "/opt/hydrostream/kafka-start.sh", node.initial_controllers,
                              "hydro-admin", catalog.SECRETS_DIR, "/dev/shm/kafka-sasl"]
    assert f"{systemd.BIN_DIR}:/opt/hydrostream:ro,rslave" in run["volumes"]
    shipped = files(document)
    scripts = ("kafka-start.sh", "kafka-format.sh", "kafka-sasl-files.sh", "kafka-setup.sh",
               "kafka-access.sh")
    assert {f"{systemd.BIN_DIR}/{name}" for name in scripts} <= set(shipped)
    # The same three voters, each with its own directory id, on every node.
    voters = node.initial_controllers.split(",")
    assert [v.rsplit(":", 1)[0] for v in voters] == [f"{i}@{v}" for i, v in enumerate(VOTERS, start=1)]
    directories = [v.rsplit(":", 1)[1] for v in voters]
    assert len(set(directories)) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", d) for d in directories)
    other = kafka_service.KafkaNode(3, "europe-west1-d", VOTERS, min_insync_replicas=2)
    assert other.initial_controllers == node.initial_controllers


def test_a_single_broker_is_a_quorum_of_itself_started_like_a_cluster_node():
    single = cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS), SINGLE, KAFKA_PASSWORDS, agent=AGENT)
    run = container_units(single)["kafka"]
    env = run["env"]
    assert env["KAFKA_NODE_ID"] == "1"
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    assert env["KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"] == "localhost:9093"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    # Not the image's entrypoint, which could not add the admin's SCRAM credential at format.
    assert run["command"][:3] == ["bash", "/opt/hydrostream/kafka-start.sh", SINGLE.initial_controllers]


def test_every_broker_listener_authenticates_and_only_acls_authorize(documents):
    env = container_units(documents[catalog.BROKER])["kafka"]["env"]
    assert env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] == "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert env["KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert env["KAFKA_SUPER_USERS"] == "User:hydro-admin"
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_the_broker_fetches_every_kafka_password_and_mounts_it_read_only(documents):
    unit = units(documents[catalog.BROKER])["hydrostream-kafka.service"]
    fetched = [c for c in commands(unit, "ExecStartPre") if c[1].endswith("/fetch-secret.sh")]
    assert sorted(c[2] for c in fetched) == sorted(secret_id(f"kafka-password-{u}") for u in KAFKA_USERS)
    volumes = container_units(documents[catalog.BROKER])["kafka"]["volumes"]
    for user in KAFKA_USERS:
        name = f"kafka-password-{user}"
        assert f"{catalog.SECRETS_DIR}/kafka/{name}:{catalog.SECRETS_DIR}/{name}:ro" in volumes
    with pytest.raises(ValueError, match="kafka-password-hydro-admin"):
        cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS), SINGLE, KAFKA_PASSWORDS[1:], agent=AGENT)


@pytest.mark.parametrize(("node", "message"), [
    (lambda: kafka_service.KafkaNode(4, "europe-west1-b", VOTERS, 2),
     "node id 4: must be from 1 to the 3 voters"),
    (lambda: kafka_service.KafkaNode(1, "europe-west1-b", VOTERS, 3),
     "min_insync_replicas 3: from 1 to one fewer"),
    (lambda: kafka_service.KafkaNode(1, "europe-west1-b", (VOTERS[0],) * 3, 2), "distinct host:port"),
    (lambda: kafka_service.KafkaNode(1, "Europe West", VOTERS, 2), "rack 'Europe West'"),
    (lambda: kafka_service.TopicSpec(contract.READINGS_TOPIC, 6, 1000, replication_factor=1,
                                  min_insync_replicas=2),
     "min_insync_replicas must be from 1 to the replication factor 1"),
])
def test_a_bad_node_or_replication_is_refused_by_name(node, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        node()


def test_topics_with_more_replicas_than_brokers_are_refused():
    with pytest.raises(ValueError, match="replication factor above the 1 brokers"):
        cloud_init.broker_cloud_init(kafka(HEAP_MB, REPLICATED),
                                     SINGLE, KAFKA_PASSWORDS, agent=AGENT)


def test_the_catalog_env_stays_the_catalogs_outside_the_cluster_keys():
    node = kafka_service.KafkaNode(1, "europe-west1-b", VOTERS, 2)
    # Every key a node sets but its rack and the quorum's bootstrap replaces a single-broker value of the
    # catalog's, which has no static voters.
    assert set(node.env) - {"KAFKA_BROKER_RACK", "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS"} <= set(
        catalog.KAFKA.env)
    assert {key: node.env[key] for key in ("KAFKA_NODE_ID", "KAFKA_DEFAULT_REPLICATION_FACTOR",
                                           "KAFKA_MIN_INSYNC_REPLICAS")} == {
        "KAFKA_NODE_ID": "1", "KAFKA_DEFAULT_REPLICATION_FACTOR": str(len(VOTERS)),
        "KAFKA_MIN_INSYNC_REPLICAS": "2"}
    document = cloud_init.broker_cloud_init(kafka(HEAP_MB, REPLICATED), node, KAFKA_PASSWORDS, agent=AGENT)
    env = container_units(document)["kafka"]["env"]
    kept = {key: value for key, value in catalog.KAFKA.env.items() if key not in node.env}
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" not in env
    assert {key: env[key] for key in kept} == kept
    assert {key: env[key] for key in node.env} == node.env
    assert env["KAFKA_LISTENERS"] == "PLAINTEXT://:9092,CONTROLLER://:9093"


def test_kafka_loads_the_metrics_agent_checked_before_each_start(documents):
    document = documents[catalog.BROKER]
    unit = units(document)["hydrostream-kafka.service"]
    pre = commands(unit, "ExecStartPre")
    # Written out by hand: the jar's media URL (object name encoded), the lock's sha256, where checked jars
    # are kept and where the container reads it.
    assert ["/bin/bash", "/etc/hydrostream/bin/fetch-agent.sh",
            "https://storage.googleapis.com/storage/v1/b/hydro-broker-agents/o/agents%2F"
            f"{AGENT_SHA256}%2Fjmx_prometheus_javaagent-1.0.1.jar?alt=media", AGENT_SHA256,
            "/var/lib/hydrostream/agents",
            "/etc/hydrostream/agents/kafka/jmx_prometheus_javaagent.jar"] in pre
    run = container_units(document)["kafka"]
    assert "/etc/hydrostream/agents/kafka:/opt/kafka-metrics:ro,rslave" in run["volumes"]
    assert run["env"]["KAFKA_OPTS"] == ("-javaagent:/opt/kafka-metrics/jmx_prometheus_javaagent.jar=9404:"
                                        "/opt/kafka-metrics/jmx-exporter.yml")
    shipped = files(document)
    config = (Path(cloud_init.__file__).resolve().parents[2] / "monitoring" / "kafka" / "jmx-exporter.yml")
    assert shipped["/etc/hydrostream/agents/kafka/jmx-exporter.yml"] == config.read_text()
    assert "/etc/hydrostream/bin/fetch-agent.sh" in shipped
    # The host firewall admits the agent's port (the VPC rule decides who reaches it).
    (ports,) = commands(units(document)["hydrostream-host-firewall.service"], "ExecStart")
    assert "9404/tcp" in ports


def test_a_broker_without_its_agent_jar_is_refused():
    with pytest.raises(TypeError, match="agent"):
        cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS), SINGLE, KAFKA_PASSWORDS)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="64 hex"):
        vm_inputs.AgentJar("gs://hydro-broker-agents/agents/x.jar", "abc")


def agent_stubs(tmp_path: Path, served: bytes) -> Path:
    """curl: the metadata token, and the jar bytes `served` for the agent object (counted)."""
    (tmp_path / "served.jar").write_bytes(served)
    stubs = tmp_path / "stubs"
    stub(stubs, "curl", """
case "$*" in
  *computeMetadata*token*) echo '{"access_token":"ya29.TEST-TOKEN","expires_in":3599}' ;;
  *storage.googleapis.com*)
    echo x >>"$STUB_DIR/downloads"
    out=; prev=; for arg in "$@"; do [[ "$prev" != --output ]] || out=$arg; prev=$arg; done
    cp "$STUB_DIR/served.jar" "$out" ;;
  *) exit 22 ;;
esac""")
    return stubs


def fetch_agent(tmp_path: Path, stubs: Path, sha256: str) -> subprocess.CompletedProcess:
    return run_script("fetch-agent.sh", AGENT.media_url, sha256, str(tmp_path / "cache"),
                      str(tmp_path / "etc" / "jmx_prometheus_javaagent.jar"), stubs=stubs,
                      env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_DIR": str(tmp_path)})


def test_fetch_agent_installs_a_checked_jar_and_reuses_the_checked_copy(tmp_path):
    jar = b"PK\x03\x04 a jar"
    sha256 = hashlib.sha256(jar).hexdigest()
    stubs = agent_stubs(tmp_path, jar)
    dest = tmp_path / "etc" / "jmx_prometheus_javaagent.jar"
    for _boot in range(2):
        dest.unlink(missing_ok=True)  # /etc is a tmpfs: empty at each boot
        result = fetch_agent(tmp_path, stubs, sha256)
        assert result.returncode == 0, result.stderr
        assert dest.read_bytes() == jar and stat.S_IMODE(dest.stat().st_mode) == 0o444
    # The second boot used the copy kept on /var: one download in all.
    assert (tmp_path / "downloads").read_text().count("x") == 1
    assert "TEST-TOKEN" not in log_text(tmp_path)


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "calls.log").read_text()


def test_fetch_agent_refuses_a_jar_whose_sha256_differs_and_installs_nothing(tmp_path):
    stubs = agent_stubs(tmp_path, b"another jar")
    wanted = hashlib.sha256(b"the locked jar").hexdigest()
    result = fetch_agent(tmp_path, stubs, wanted)
    assert result.returncode != 0
    served = hashlib.sha256(b"another jar").hexdigest()
    assert f"REFUSED {AGENT.media_url}: its sha256 is {served}, the lock pins {wanted}" in result.stderr
    assert not (tmp_path / "etc" / "jmx_prometheus_javaagent.jar").exists()
    assert not any((tmp_path / "cache").iterdir())


def test_fetch_agent_downloads_again_over_a_corrupted_cached_copy(tmp_path):
    jar = b"the locked jar"
    sha256 = hashlib.sha256(jar).hexdigest()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"{sha256}.jar").write_bytes(b"bit rot")
    result = fetch_agent(tmp_path, agent_stubs(tmp_path, jar), sha256)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "etc" / "jmx_prometheus_javaagent.jar").read_bytes() == jar
    assert "does not have sha256" in result.stderr


def test_the_broker_needs_both_contract_topics():
    with pytest.raises(ValueError, match=re.escape(contract.DEAD_LETTER_TOPIC)):
        cloud_init.broker_cloud_init(kafka(HEAP_MB, TOPICS[:1]), SINGLE, KAFKA_PASSWORDS, agent=AGENT)
    with pytest.raises(ValueError, match="partitions"):
        kafka_service.TopicSpec(contract.READINGS_TOPIC, partitions=0, retention_ms=1000)


# --- InfluxDB -----------------------------------------------------------------------------------

def test_influxdb_is_set_up_from_the_arguments(documents):
    env = container_units(documents[catalog.TSDB])["influxdb"]["env"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    setup = (env["DOCKER_INFLUXDB_INIT_ORG"], env["DOCKER_INFLUXDB_INIT_BUCKET"],
             env["DOCKER_INFLUXDB_INIT_RETENTION"], env["GOMEMLIMIT"])
    assert setup == ("hydro-farm", "sensors", "30d", "700MiB")
    with pytest.raises(ValueError, match="retention"):
        cloud_init.tsdb_cloud_init(influx("o", "b", "30 days", 512), refs(catalog.INFLUXDB_ADMIN_PASSWORD,
                                                                  catalog.INFLUXDB_TOKEN))


# --- monitoring config ----------------------------------------------------------------------------

def test_the_config_unit_fetches_the_bundle_and_the_inline_files(documents):
    document = documents[catalog.MONITORING]
    (args,) = commands(units(document)["hydrostream-config.service"], "ExecStart")
    assert args[1:] == ["/etc/hydrostream/bin/fetch-config.sh", "--textfile",
                        "/mnt/disks/data/node-exporter-textfile", "/mnt/disks/data",
                        "/etc/hydrostream/config", "metadata:hydrostream-config-bundle",
                        "grafana-provisioning", "prometheus-config"]
    # The bundle's URL is read from metadata: a new bundle leaves this document as it is.
    assert "sha256-ab12" not in document and BUNDLE.media_url == (
        "https://storage.googleapis.com/storage/v1/b/hydro-config/o/monitoring%2Fsha256-ab12.tar.gz?alt=media")
    inline = files(document)["/etc/hydrostream/config/prometheus-config/prometheus.yml"]
    assert inline == PROMETHEUS_YML.content
    for name in ("prometheus", "grafana"):
        unit = units(document)[f"hydrostream-{name}.service"].splitlines()
        # A config that fails to arrive is retried while the container restarts; no data disk, no start.
        assert "hydrostream-config.service" in next(line for line in unit if line.startswith("Wants="))
        assert "hydrostream-data-disk.service" in next(line for line in unit if line.startswith("Requires="))
    with pytest.raises(ValueError, match="no volume"):
        cloud_init.monitoring_cloud_init(("kafka-data",),
                                         refs(catalog.GRAFANA_ADMIN_PASSWORD, catalog.INFLUXDB_READ_TOKEN))


def bundle(path: Path, members: dict[str, str]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    path.write_bytes(buffer.getvalue())
    return path


def named_by_digest(bundle_file: Path) -> str:
    """The media URL of `bundle_file` uploaded as monitoring.py names it: by its content's sha256."""
    digest = hashlib.sha256(bundle_file.read_bytes()).hexdigest()
    return vm_inputs.ConfigBundle(f"gs://hydro-config/monitoring/{digest}.tar.gz", BUNDLE.volumes).media_url


def fetch_config(tmp_path: Path, bundle_file: Path | None, *options: str,
                 url: str | None = None, served: Path | None = None) -> subprocess.CompletedProcess:
    """fetch-config.sh with curl stubbed: metadata names `url` (by default `bundle_file`'s digest name),
    and the download copies `served` (by default `bundle_file`) from the local disk."""
    if url is None:
        url = (named_by_digest(bundle_file) if bundle_file
               else BUNDLE.media_url.replace("sha256-ab12", "0" * 64))
    served = served or bundle_file
    stubs = tmp_path / "bin"
    stub(stubs, "curl", """
case "$*" in
  *computeMetadata*token*) echo '{"access_token":"ya29.T","expires_in":3599}' ;;
  *computeMetadata*/instance/attributes/hydrostream-config-bundle) printf '%s' "$STUB_URL" ;;
  *storage.googleapis.com*)
    cat >/dev/null  # the Authorization header, as curl's --config - (unread, the writer may die of SIGPIPE)
    [[ -n "$STUB_BUNDLE" ]] || exit 22
    while [[ $# -gt 0 ]]; do [[ "$1" == --output ]] && cp "$STUB_BUNDLE" "$2"; shift; done ;;
  *) exit 22 ;;
esac""")
    stub(stubs, "systemctl", "")
    (tmp_path / "data").mkdir(exist_ok=True)
    inline = tmp_path / "inline" / "prometheus-config"
    inline.mkdir(parents=True, exist_ok=True)
    (inline / "prometheus.yml").write_text("inline\n")
    (tmp_path / "textfile").mkdir(exist_ok=True)
    return run_script("fetch-config.sh", *options, "--textfile", str(tmp_path / "textfile"),
                      str(tmp_path / "data"), str(tmp_path / "inline"),
                      "metadata:hydrostream-config-bundle", "grafana-provisioning", "prometheus-config",
                      stubs=stubs, env={"STUB_LOG": str(tmp_path / "calls.log"), "STUB_URL": url,
                                        "STUB_BUNDLE": str(served or "")})


def test_fetch_config_unpacks_the_bundle_and_keeps_the_last_good_config(tmp_path):
    archive = bundle(tmp_path / "b.tgz", {"prometheus-config/prometheus.yml": "from bundle\n",
                                          "prometheus-config/rules/alerts.yml": "groups: []\n",
                                          "grafana-provisioning/datasources/influx.yml": "apiVersion: 1\n"})
    result = fetch_config(tmp_path, archive)
    assert result.returncode == 0, result.stderr
    data = tmp_path / "data"
    assert (data / "prometheus-config" / "prometheus.yml").read_text() == "inline\n"
    assert (data / "prometheus-config" / "rules" / "alerts.yml").read_text() == "groups: []\n"
    assert (data / "grafana-provisioning" / "datasources" / "influx.yml").read_text() == "apiVersion: 1\n"

    inode = (data / "prometheus-config").stat().st_ino
    assert fetch_config(tmp_path, archive).returncode == 0
    assert (data / "prometheus-config").stat().st_ino == inode  # refreshed in place: mounts stay valid
    result = fetch_config(tmp_path, None, url=named_by_digest(archive))  # the download fails next boot
    assert result.returncode == 0 and "keeping the config" in result.stderr
    assert (data / "prometheus-config" / "rules" / "alerts.yml").exists()
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == [
        "grafana-provisioning", "prometheus-config"]
    assert calls(tmp_path / "calls.log", "systemctl") == []  # at boot the containers start after it


RESTART = ("--restart", "hydrostream-prometheus.service", "--restart", "hydrostream-grafana.service")


def test_the_config_refresh_applies_only_a_new_bundle_and_restarts_its_readers(tmp_path):
    first = bundle(tmp_path / "1.tgz", {"prometheus-config/rules/a.yml": "first\n",
                                        "grafana-provisioning/dashboards/d.json": "{}\n"})
    second = bundle(tmp_path / "2.tgz", {"prometheus-config/rules/a.yml": "second\n",
                                         "grafana-provisioning/dashboards/d.json": "{}\n"})
    log = tmp_path / "calls.log"
    assert fetch_config(tmp_path, first).returncode == 0  # the boot
    rules = tmp_path / "data" / "prometheus-config" / "rules" / "a.yml"
    result = fetch_config(tmp_path, second, *RESTART, url=named_by_digest(first))  # same URL as at boot
    assert result.returncode == 0 and "unchanged" in result.stdout
    assert rules.read_text() == "first\n" and calls(log, "systemctl") == []

    new_url = named_by_digest(second)
    result = fetch_config(tmp_path, second, *RESTART, url=new_url)
    assert result.returncode == 0, result.stderr
    assert rules.read_text() == "second\n"
    assert (tmp_path / "data" / "prometheus-config" / "prometheus.yml").read_text() == "inline\n"
    assert calls(log, "systemctl") == ["systemctl try-restart --no-block hydrostream-prometheus.service "
                                       "hydrostream-grafana.service"]
    assert fetch_config(tmp_path, second, *RESTART, url=new_url).returncode == 0
    assert len(calls(log, "systemctl")) == 1  # applied once


def test_the_config_refresh_refuses_a_url_that_is_not_cloud_storage(tmp_path):
    result = fetch_config(tmp_path, None, *RESTART, url="https://evil.example/b.tgz")
    assert result.returncode != 0 and "not a Cloud Storage media URL" in result.stderr


def refused_metric(tmp_path: Path) -> str:
    return (tmp_path / "textfile" / "config-bundle.prom").read_text().splitlines()[-1]


@pytest.mark.parametrize("options", [(), RESTART], ids=["boot", "refresh"])
def test_a_tampered_bundle_is_refused_applied_nowhere_and_reported(tmp_path, options):
    good = bundle(tmp_path / "good.tgz", {"prometheus-config/rules/a.yml": "good\n",
                                          "grafana-provisioning/dashboards/d.json": "{}\n"})
    assert fetch_config(tmp_path, good).returncode == 0
    assert refused_metric(tmp_path) == "hydro_config_bundle_refused 0"
    rules = tmp_path / "data" / "prometheus-config" / "rules" / "a.yml"
    # A new bundle is uploaded and named in metadata; someone with write access to the bucket then
    # replaces the object: the name (its digest) stays, the bytes change.
    new = bundle(tmp_path / "new.tgz", {"prometheus-config/rules/a.yml": "new\n",
                                        "grafana-provisioning/dashboards/d.json": "{}\n"})
    tampered = bundle(tmp_path / "tampered.tgz", {"prometheus-config/rules/a.yml": "groups: [] # evil\n",
                                                  "grafana-provisioning/dashboards/d.json": "{}\n"})
    result = fetch_config(tmp_path, new, *options, served=tampered)
    assert result.returncode != 0
    digest = hashlib.sha256(new.read_bytes()).hexdigest()
    actual = hashlib.sha256(tampered.read_bytes()).hexdigest()
    assert (f"REFUSED config bundle {named_by_digest(new)}: its content's sha256 is {actual}, its name says "
            f"{digest}; nothing of it applied") in result.stderr
    assert rules.read_text() == "good\n"
    assert (tmp_path / "data" / ".config-bundle-url").read_text() == named_by_digest(good)
    assert calls(tmp_path / "calls.log", "systemctl") == []
    assert refused_metric(tmp_path) == "hydro_config_bundle_refused 1"
    assert not [p for p in (tmp_path / "data").iterdir() if p.name.startswith(".config.")]  # no staging left
    # The untampered object passes, and the metric clears.
    result = fetch_config(tmp_path, new, *options)
    assert result.returncode == 0, result.stderr
    assert rules.read_text() == "new\n" and refused_metric(tmp_path) == "hydro_config_bundle_refused 0"


def test_a_bundle_not_named_by_its_digest_is_refused_before_download(tmp_path):
    archive = bundle(tmp_path / "b.tgz", {"prometheus-config/rules/a.yml": "x\n"})
    result = fetch_config(tmp_path, archive, url=BUNDLE.media_url)  # .../monitoring%2Fsha256-ab12.tar.gz
    assert result.returncode != 0
    assert "its object is not named <sha256>.tar.gz" in result.stderr
    assert not [c for c in calls(tmp_path / "calls.log", "curl") if "storage.googleapis.com" in c]
    assert refused_metric(tmp_path) == "hydro_config_bundle_refused 1"
    assert not (tmp_path / "data" / "prometheus-config").exists()


def test_the_monitoring_vm_refreshes_its_config_on_a_timer(documents):
    found = units(documents[catalog.MONITORING])
    timer = found["hydrostream-config-refresh.timer"]
    assert f"OnUnitActiveSec={cloud_init.CONFIG_REFRESH_S}s" in timer.splitlines()
    assert "Unit=hydrostream-config-refresh.service" in timer.splitlines()
    refresh = found["hydrostream-config-refresh.service"]
    assert "RemainAfterExit=yes" not in refresh  # else the timer could start it only once per boot
    (args,) = commands(refresh, "ExecStart")
    assert args[1] == "/etc/hydrostream/bin/fetch-config.sh"
    assert args[2:6] == list(RESTART)
    assert args[6:] == ["--textfile", "/mnt/disks/data/node-exporter-textfile", "/mnt/disks/data",
                        "/etc/hydrostream/config", "metadata:hydrostream-config-bundle",
                        "grafana-provisioning", "prometheus-config"]
    assert "hydrostream-config-refresh.timer" in yaml.safe_load(documents[catalog.MONITORING])["runcmd"][1]


# --- a changed user-data is applied by a reboot, not a new VM --------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_every_vm_watches_its_user_data(role, documents):
    found = units(documents[role])
    timer = found["hydrostream-user-data-watch.timer"]
    assert f"OnUnitActiveSec={cloud_init.USER_DATA_WATCH_S}s" in timer.splitlines()
    (args,) = commands(found["hydrostream-user-data-watch.service"], "ExecStart")
    assert args[1:] == ["/etc/hydrostream/bin/watch-user-data.sh", "/var/lib/cloud/instance/user-data.txt",
                        "/var/lib/hydrostream/rebooted-for-user-data"]
    assert "hydrostream-user-data-watch.timer" in yaml.safe_load(documents[role])["runcmd"][1]


def watch_user_data(tmp_path: Path, metadata: str | None, applied: str | None):
    stubs = tmp_path / "bin"
    stub(stubs, "curl", """
case "$*" in
  *computeMetadata*/instance/attributes/user-data)
    [[ -f "$STUB_METADATA" ]] || exit 22
    cat "$STUB_METADATA" ;;
  *) exit 22 ;;
esac""")
    stub(stubs, "systemctl", "")
    if metadata is not None:
        (tmp_path / "metadata").write_text(metadata)
    copy = tmp_path / "user-data.txt"
    if applied is not None:
        copy.write_text(applied)
    return run_script("watch-user-data.sh", str(copy), str(tmp_path / "state" / "rebooted-for"), stubs=stubs,
                      env={"STUB_LOG": str(tmp_path / "calls.log"),
                           "STUB_METADATA": str(tmp_path / "metadata")})


def test_a_changed_user_data_reboots_the_vm_once(tmp_path):
    log = tmp_path / "calls.log"
    document = render(catalog.BROKER)
    assert watch_user_data(tmp_path, document, document).returncode == 0
    assert calls(log, "systemctl") == []
    changed = document.replace("-Xmx1536m", "-Xmx2048m")
    result = watch_user_data(tmp_path, changed, document)
    assert result.returncode == 0 and calls(log, "systemctl") == ["systemctl reboot"]
    # Rebooted, but cloud-init did not apply it: no reboot loop.
    result = watch_user_data(tmp_path, changed, document)
    assert result.returncode != 0 and "not rebooting again" in result.stderr
    assert len(calls(log, "systemctl")) == 1


@pytest.mark.parametrize(("metadata", "applied"), [(None, "doc"), ("doc2", None)])
def test_in_doubt_the_user_data_watch_never_reboots(tmp_path, metadata, applied):
    result = watch_user_data(tmp_path, metadata, applied)
    assert result.returncode == 0 and "warning" in result.stderr
    assert calls(tmp_path / "calls.log", "systemctl") == []


def test_fetch_config_fails_without_any_config_and_rejects_foreign_folders(tmp_path):
    (tmp_path / "first").mkdir()
    result = fetch_config(tmp_path / "first", None)
    assert result.returncode != 0 and "no earlier config" in result.stderr
    (tmp_path / "second").mkdir()
    result = fetch_config(tmp_path / "second", bundle(tmp_path / "b.tgz", {"kafka-data/x": "x\n"}))
    assert result.returncode != 0 and "not a config volume" in result.stderr


@pytest.mark.parametrize(("build", "named"), [
    (lambda: cloud_init.ConfigFile("prometheus-config", "../etc/passwd", "x"), "../etc/passwd"),
    (lambda: vm_inputs.ConfigBundle("https://example.com/b.tgz", ("prometheus-config",)), "gs://"),
    (lambda: cloud_init.DataDisk(mount_path="/var/lib/data"), "/var/lib/data"),
    (lambda: cloud_init.DataDisk(device_name="Data Disk"), "Data Disk"),
    (lambda: cloud_init.broker_cloud_init(kafka(128, TOPICS), SINGLE, KAFKA_PASSWORDS, agent=AGENT), "128"),
    (lambda: kafka_service.TopicSpec("hydro:readings", 1, 1000), "hydro:readings"),
    (lambda: cloud_init.tsdb_cloud_init(influx("", "b", "30d", 512), refs(catalog.INFLUXDB_ADMIN_PASSWORD,
                                                                  catalog.INFLUXDB_TOKEN)), "org"),
])
def test_bad_arguments_are_refused_naming_what_is_wrong(build, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        build()
