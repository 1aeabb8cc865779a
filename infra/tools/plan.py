"""Offline plan: run the real Pulumi program under mocks and list what it would create.

No cloud and no Pulumi CLI: the program (`infra/__main__.py`) runs against `pulumi.runtime.set_mocks`
with a monitor that also records what mocks normally cannot see (protect, delete-before-replace,
dependencies, secret inputs). `make plan STACK=dev` prints the inventory: every resource with the
values that matter, the derived sizing and the stack outputs, then (on stderr) the consumer's capacity
against the configured rate and the monthly cost estimate. A service VM's cloud-config is shown
as the containers it runs (image, user, environment, volumes, health check) and the host ports it
opens; property maps (cluster and job properties) are shown whole; `sizing:` holds the Spark sizes
and each service VM's shape and memory budget. So a heap, an image or a property change reads as a
diff of its own line. The reviewed inventories live in
`tests/inventories/<stack>.yaml`; `make plan STACK=dev WRITE=1` rewrites one after a deliberate change.

    python -m infra.tools.plan dev [--write]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
import runpy
import shlex
import sys
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml

# Private Pulumi internals (pinned in requirements.lock; tests/infra/test_pulumi_internals.py fails naming
# any that a Pulumi upgrade moves or removes). The public mocks API runs a program only inside a unit
# test framework's event loop and hides resource options and secret markers; the plan needs both.
# - `rpc._special_sig_key` / `rpc._special_secret_sig`: how a secret is marked in a registration's
#   protobuf inputs. Gone or renamed: `_secret_paths` finds no secret input, so inventories show secret
#   values as plain text placeholders and the policy tests for secret inputs fail.
# - `rpc.deserialize_properties`: a registration's inputs as Python values. Gone: no plan at all.
# - `runtime_settings.ROOT`, `SETTINGS.rpc_manager`, `get_root_resource()`: the per-run state a second
#   plan in the same process must reset. Changed: the second plan in a test session sees the first
#   one's stack resource or waits forever for its pending registrations.
# - `run_pulumi_func`: runs the program body as `pulumi up` does (stack resource, outputs, waiting for
#   every registration). Gone: nothing registers the stack resource and `root.outputs` is empty.
# - `sync_await._sync_await`: drives Pulumi's event loop from synchronous code. Gone: no plan at all.
# - `mocks.MockMonitor` and the `RegisterResourceRequest` fields `RecordingMonitor` reads (protect,
#   deleteBeforeReplace, ...): the only place resource options are visible. Renamed: the monitor
#   fails with an AttributeError on the first registration.
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from infra import settings as stack_settings
from infra import stack_file
from infra.paths import PROJECT_DIR
from infra.stack_file import StackFileError, read_config

PROGRAM = PROJECT_DIR / "infra" / "__main__.py"
STACKS_DIR = stack_file.stacks_dir()
INVENTORIES_DIR = PROJECT_DIR / "tests" / "inventories"
PROJECT = stack_file.project_name()

# Input properties worth reviewing in an inventory, wherever they appear in a resource's inputs.
KEY_FIELDS = frozenset({
    "accountId", "allows", "autoCreateSubnetworks", "bootDiskSizeGb", "canIpForward", "clusterName",
    "deletionProtection", "denies", "destinationRanges", "direction", "enableComponentGateway",
    "enableSecureBoot", "enableVtpm", "enableIntegrityMonitoring", "forceDestroy", "idleDeleteTtl",
    "image", "imageVersion", "internalIpOnly", "ipCidrRange", "keepLocallyFlag", "location",
    "machineType", "maxFailuresPerHour", "maxFailuresTotal", "member", "members", "mainPythonFileUri",
    "natIpAllocateOption", "numInstances", "ports", "privateIpGoogleAccess", "pythonFileUris",
    "jarFileUris", "role", "secretId", "serviceAccount", "size", "sourceRanges", "sourceServiceAccounts",
    "sourceSubnetworkIpRangesToNat", "sourceTags", "storageClass", "tags", "targetTags",
    "uniformBucketLevelAccess", "versioning", "zone", "region", "type", "jobId", "restart",
    "publishPort", "internal", "external", "ip", "volumeName", "containerPath", "readOnly", "args",
    "protocol", "enable-oslogin", "user-data", "secretData", "properties", "overrideProperties",
    "hydrostream-config-bundle", "envs",
    "maxRetentionDays", "onSourceDiskDelete", "startTime", "daysInCycle", "storageLocations", "disk",
    "age", "daysSinceNoncurrentTime", "serviceAccountId",
})
# Mapping-valued fields shown whole (their keys hold dots and colons, e.g. `spark:spark.executor.memory`).
MAP_FIELDS = frozenset({"properties", "overrideProperties", "versioning"})
INSTANCE = "gcp:compute/instance:Instance"
SECRET = "[secret]"
_JOB_ID = re.compile(r"hydro-(consumer|producer)-[0-9a-f]{16}-[0-9a-f]{8}")
_SECRET_SIG = rpc._special_sig_key
_SECRET_VALUE = rpc._special_secret_sig


@dataclass
class PlannedResource:
    """One registered resource: its inputs and the options mocks normally hide."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: frozenset[str]
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    dependencies: tuple[str, ...]
    ignore_changes: tuple[str, ...]
    replace_on_changes: tuple[str, ...] = ()


@dataclass
class Plan:
    """What the program registered and exported for one stack."""

    stack: str
    resources: list[PlannedResource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str]
    settings: Any = None

    def of_type(self, type_: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_]

    def named(self, type_: str, name: str) -> PlannedResource:
        matches = [r for r in self.resources if r.type == type_ and r.name == name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources of type {type_} named {name!r}")
        return matches[0]


def _secret_paths(value: Any, path: str = "") -> set[str]:
    """Paths (dotted) of values the program marked secret, read from the wire form."""
    found: set[str] = set()
    if hasattr(value, "fields"):  # google.protobuf Struct
        fields = value.fields
        if _SECRET_SIG in fields and fields[_SECRET_SIG].string_value == _SECRET_VALUE:
            return {path}
        for key, item in fields.items():
            found |= _secret_paths(item, f"{path}.{key}" if path else key)
    elif hasattr(value, "WhichOneof"):
        kind = value.WhichOneof("kind")
        if kind == "struct_value":
            found |= _secret_paths(value.struct_value, path)
        elif kind == "list_value":
            for index, item in enumerate(value.list_value.values):
                found |= _secret_paths(item, f"{path}[{index}]")
    return found


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that also keeps each registration's options and secret inputs."""

    def __init__(self, mocks: pulumi_mocks.Mocks):
        super().__init__(mocks)
        self.registered: list[PlannedResource] = []

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registered.append(PlannedResource(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=request.custom,
                inputs=rpc.deserialize_properties(request.object),
                secret_paths=frozenset(_secret_paths(request.object)),
                protect=request.protect,
                delete_before_replace=request.deleteBeforeReplace,
                retain_on_delete=request.retainOnDelete,
                dependencies=tuple(request.dependencies),
                ignore_changes=tuple(request.ignoreChanges),
                replace_on_changes=tuple(request.replaceOnChanges),
            ))
        return response


def _mock_ip(subnet: int, name: str) -> str:
    """An address derived from the resource's name: registration order varies, plans must not."""
    return f"10.255.{subnet}.{10 + hashlib.sha256(name.encode()).digest()[0] % 240}"


class HydroMocks(pulumi_mocks.Mocks):
    """Provider stand-ins: echo inputs and fill in the computed outputs the program reads."""

    def __init__(self, project: str = "mock-project"):
        self.project = project

    def new_resource(self, args: pulumi_mocks.MockResourceArgs):
        state = dict(args.inputs)
        name = state.get("name", args.name)
        state.setdefault("name", name)
        kind = args.typ
        if kind == "gcp:compute/instance:Instance":
            interfaces = [dict(nic) for nic in state.get("networkInterfaces", [])]
            for index, nic in enumerate(interfaces):
                nic.setdefault("networkIp", _mock_ip(0, f"{args.name}/{index}"))
            state["networkInterfaces"] = interfaces
            state["selfLink"] = f"projects/{self.project}/zones/{state.get('zone')}/instances/{name}"
        elif kind == "gcp:compute/address:Address":
            state.setdefault("address", _mock_ip(1, args.name))
        elif kind == "gcp:compute/disk:Disk":
            state["selfLink"] = f"projects/{self.project}/zones/{state.get('zone')}/disks/{name}"
        elif kind == "gcp:serviceaccount/account:Account":
            state["email"] = f"{state['accountId']}@{self.project}.iam.gserviceaccount.com"
            state["member"] = f"serviceAccount:{state['email']}"
            state["name"] = f"projects/{self.project}/serviceAccounts/{state['email']}"
        elif kind == "gcp:storage/bucket:Bucket":
            state["url"] = f"gs://{name}"
        elif kind == "gcp:secretmanager/secret:Secret":
            state["name"] = f"projects/{self.project}/secrets/{state.get('secretId')}"
        elif kind == "gcp:secretmanager/secretVersion:SecretVersion":
            state["name"] = f"{state.get('secret')}/versions/1"
        elif kind == "gcp:storage/bucketObject:BucketObject":
            state["mediaLink"] = f"https://storage.googleapis.com/{state.get('bucket')}/{name}"
            state["outputName"] = name
        elif kind == "docker:index/remoteImage:RemoteImage":
            state["imageId"] = "sha256:" + hashlib.sha256(state["name"].encode()).hexdigest()
        elif kind.startswith("random:index/random"):
            state["result"] = f"mock-{args.name}-value"
        elif kind.startswith("gcp:compute/") and kind.endswith((":Network", ":Subnetwork")):
            state["selfLink"] = f"projects/{self.project}/{args.name}"
        return f"{args.name}-id", state

    def call(self, args: pulumi_mocks.MockCallArgs):
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": self.project, "number": "123456789012"}, None
        return {}, None


def stack_config(stack: str, stacks_dir: Path = STACKS_DIR) -> dict[str, Any]:
    """A stack file's `config:` mapping, as the Pulumi CLI would hand it to the program."""
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml")
                       for p in stacks_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"no stack file {path}; known stacks: {', '.join(known)}")
    return read_config(path, PROJECT)


# The alert receivers' secret config keys. A stack file holds their values only as Pulumi ciphertext
# (`secure:`), which needs the Pulumi CLI to decrypt: the plan stands in a placeholder, marked secret
# as Pulumi marks the real value.
SECRET_CONFIG_KEYS = frozenset(
    f"{stack_settings.NAMESPACE}:{key}" for key in stack_settings.RECEIVER_SECRET_KEYS.values())
# URL-shaped: settings check the webhook URL secret's value (a routing key or password takes any text).
SECRET_PLACEHOLDER = "https://plan-placeholder.invalid/"


def with_secret_placeholders(config: Mapping[str, Any]) -> dict[str, Any]:
    """`config` with a placeholder for each receiver secret that is unset or encrypted."""
    return {**config, **{key: SECRET_PLACEHOLDER for key in SECRET_CONFIG_KEYS
                         if not isinstance(config.get(key), str)}}


def _encode(config: Mapping[str, Any]) -> dict[str, str]:
    """Pulumi passes structured values to the program as JSON text and scalars as strings."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_plan(stack: str, config: Mapping[str, Any] | None = None, *, preview: bool = True,
             program: Path = PROGRAM, monitor: RecordingMonitor | None = None) -> Plan:
    """Run the program for `stack` under mocks (`preview` as in `pulumi preview`) and return its plan.

    Pass a `monitor` to see what was registered even when the program fails.
    """
    namespace: dict[str, Any] = {}

    def body() -> None:
        namespace.update(runpy.run_path(str(program), run_name="__main__"))

    plan = _run(stack, config, body, preview=preview, monitor=monitor)
    plan.settings = namespace.get("settings")
    return plan


def run_components(stack: str, declare: Callable[[stack_settings.StackSettings], Mapping[str, Any]],
                   config: Mapping[str, Any] | None = None, *, preview: bool = True) -> Plan:
    """Declare components directly under mocks, with `stack`'s settings, and return what they registered.

    `declare` gets the parsed settings and returns the outputs to export (component tests build one
    component from narrow Args this way, without the whole program).
    """
    config = stack_config(stack) if config is None else config
    settings = stack_settings.parse_settings(stack, config)

    def body() -> None:
        for key, value in declare(settings).items():
            pulumi.export(key, value)

    plan = _run(stack, config, body, preview=preview, monitor=None)
    plan.settings = settings
    return plan


def _run(stack: str, config: Mapping[str, Any] | None, body: Callable[[], None], *, preview: bool,
         monitor: RecordingMonitor | None) -> Plan:
    config = with_secret_placeholders(stack_config(stack) if config is None else config)
    mocks = HydroMocks(project=str(config.get("gcp:project", "mock-project")))
    monitor = monitor or RecordingMonitor(mocks)
    pulumi.runtime.set_all_config(_encode(config), sorted(SECRET_CONFIG_KEYS))
    runtime_settings.ROOT.set(None)
    pulumi_mocks.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    runtime_settings.SETTINGS.rpc_manager.clear()
    _sync_await(run_pulumi_func(body))
    root = runtime_settings.get_root_resource()
    outputs, secret_outputs = {}, set()
    for key, value in root.outputs.items():
        output = pulumi.Output.from_input(value)
        outputs[key] = _sync_await(output.future())
        if _sync_await(output.is_secret()):
            secret_outputs.add(key)
    return Plan(stack, monitor.registered, outputs, frozenset(secret_outputs))


def _flatten(value: Any, path: str, secret_paths: frozenset[str], out: dict[str, Any]) -> None:
    if path in secret_paths:
        out[path] = SECRET
        return
    if isinstance(value, Mapping) and path.rsplit(".", 1)[-1] in MAP_FIELDS:
        out[path] = {key: value[key] for key in sorted(value)}
    elif isinstance(value, Mapping):
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else key, secret_paths, out)
    elif isinstance(value, list) and value and all(isinstance(item, Mapping) for item in value):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", secret_paths, out)
    elif path.rsplit(".", 1)[-1].split("[")[0] in KEY_FIELDS:
        out[path] = value


def _short(value: Any) -> Any:
    """Long text (cloud-init, scripts) becomes its length and digest so an inventory stays readable."""
    if isinstance(value, str) and len(value) > 200:
        return f"<{len(value)} chars sha256:{hashlib.sha256(value.encode()).hexdigest()[:12]}>"
    return value


def _docker_run(words: list[str]) -> dict[str, Any]:
    """The reviewable parts of a `docker run` command line from a rendered unit."""
    shown: dict[str, Any] = {"image": None, "env": {}, "volumes": []}
    rest = iter(words[2:])
    for word in rest:
        if word in ("--env", "--volume"):
            item = next(rest)
            if word == "--env":
                key, _, value = item.partition("=")
                shown["env"][key] = value
            else:
                shown["volumes"].append(item)
        elif word in ("--user", "--health-cmd", "--network", "--pid"):
            shown[word[2:].replace("-cmd", "")] = next(rest)
        elif word.startswith("--") and word != "--rm":
            next(rest)
        elif not word.startswith("--"):
            shown["image"] = word
            command = list(rest)
            if command:
                shown["command"] = command
    return shown


def _unit_command(unit: str, key: str) -> list[list[str]]:
    """The argument lists of a systemd unit's `key=` lines (continuations joined, `$$`/`%%` unescaped)."""
    joined = re.sub(r"\\\n", " ", unit)
    return [[w.replace("$$", "$").replace("%%", "%") for w in shlex.split(line[len(key) + 1:].lstrip("-"))]
            for line in joined.splitlines() if line.startswith(f"{key}=")]


def cloud_config_summary(document: str) -> dict[str, Any]:
    """What a service VM's cloud-config runs: its containers, the host ports it opens, its other units."""
    files = {f["path"]: f["content"] for f in yaml.safe_load(document).get("write_files", [])}
    containers: dict[str, Any] = {}
    units: dict[str, str] = {}
    for path, content in sorted(files.items()):
        if not path.startswith("/etc/systemd/system/"):
            continue
        name = path.rsplit("/", 1)[-1]
        starts = _unit_command(content, "ExecStart")
        if starts and starts[0][1:2] == ["run"] and starts[0][0].endswith("docker"):
            run = _docker_run(starts[0])
            secrets = [words[2] for words in _unit_command(content, "ExecStartPre")
                       if words[1:2] and words[1].endswith("/fetch-secret.sh")]
            if secrets:
                run["secrets"] = secrets
            containers[name.removeprefix("hydrostream-").removesuffix(".service")] = run
        elif starts:
            # A script unit: the script's name and its arguments (ports, topics, volumes, secrets).
            words = starts[0][1:] if starts[0][0].endswith("bash") else starts[0]
            units[name] = shlex.join([words[0].rsplit("/", 1)[-1], *words[1:]])
        else:
            every = [line.partition("=")[2] for line in content.splitlines()
                     if line.startswith("OnUnitActiveSec=")]
            units[name] = f"every {every[0]}" if every else "no command"
    scripts = sorted(path.rsplit("/", 1)[-1] for path in files if path.endswith(".sh"))
    return {"containers": containers, "units": units, "scripts": scripts}


def _sizing(settings: Any) -> dict[str, Any]:
    """The Spark sizes and the service VMs' shapes with the memory each service is given."""
    from infra import sizing

    def shape(machine: Any) -> str:
        return f"{machine.name} ({machine.vcpus} vCPU, {machine.memory_mb} MB)"

    return {
        **dataclasses.asdict(settings.spark),
        "dataproc_master": shape(settings.dataproc.master),
        "dataproc_worker": f"{settings.dataproc.workers} x {shape(settings.dataproc.worker)}",
        "kafka": {"machine": shape(settings.kafka.machine),
                  "heap_mb": sizing.kafka_heap_mb(settings.kafka.machine)},
        "influxdb": {"machine": shape(settings.influxdb.machine),
                     "gomemlimit_mb": sizing.influxdb_memory_limit_mb(settings.influxdb.machine)},
        "monitoring": {"machine": shape(settings.monitoring.machine)},
    }


def _releases(plan: Plan) -> set[str]:
    from infra.release import bundle

    found = {bundle.build_bundle(bundle.JOBS_DIR).digest}
    found |= {v for k, v in plan.outputs.items() if k in ("release", "jobs_release") and isinstance(v, str)}
    return found


def _without_release(value: Any, releases: set[str]) -> Any:
    """Jobs code changes every release; the inventory reviews infrastructure, so it names it `<release>`."""
    if isinstance(value, str):
        value = _JOB_ID.sub(r"hydro-\1-<release>-<spec>", value)
        for release in releases:
            value = value.replace(release, "<release>")
        return value
    if isinstance(value, Mapping):
        return {k: _without_release(v, releases) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_release(v, releases) for v in value]
    return value


def inventory(plan: Plan) -> dict[str, Any]:
    """The reviewed form of a plan: counts per type, each resource's key values, options and outputs.

    The jobs release (a digest of what ships with the jobs) reads `<release>`: promotion and the bundle
    tests own it.
    """
    names = {r.urn: r.name for r in plan.resources}
    resources = []
    for r in sorted(plan.resources, key=lambda r: (r.type, r.name)):
        values: dict[str, Any] = {}
        _flatten(r.inputs, "", r.secret_paths, values)
        entry: dict[str, Any] = {"type": r.type, "name": r.name}
        if values:
            entry["values"] = {k: _short(v) for k, v in values.items()}
        user_data = (r.inputs.get("metadata") or {}).get("user-data") if r.type == INSTANCE else None
        if isinstance(user_data, str) and "metadata.user-data" not in r.secret_paths:
            entry["cloud_config"] = cloud_config_summary(user_data)
        options = {
            "protect": r.protect, "delete_before_replace": r.delete_before_replace,
            "retain_on_delete": r.retain_on_delete,
        }
        entry.update({k: True for k, v in options.items() if v})
        depends = sorted(names[u] for u in r.dependencies if u in names)
        if depends:
            entry["depends_on"] = depends
        resources.append(entry)
    result: dict[str, Any] = {
        "stack": plan.stack,
        "counts": dict(sorted(Counter(r.type for r in plan.resources).items())),
    }
    if plan.settings is not None and plan.settings.target == "gcp":
        result["sizing"] = _sizing(plan.settings)
    result["outputs"] = {k: SECRET if k in plan.secret_outputs else _short(v)
                         for k, v in sorted(plan.outputs.items())}
    result["resources"] = resources
    return _without_release(result, _releases(plan))


def inventory_yaml(plan: Plan) -> str:
    return yaml.safe_dump(inventory(plan), sort_keys=False, width=120, allow_unicode=True)


def capacity_and_cost(plan: Plan) -> list[str]:
    """The consumer's capacity against the configured rate, and the monthly cost, of a planned stack."""
    from infra import capacity, cost

    settings = plan.settings
    if settings is None:
        return []
    consumer = (capacity.consumer_capacity(settings.spark, settings.jobs.rate)
                if settings.target == "gcp" else None)
    try:
        priced = cost.report(cost.estimate(plan))
    except cost.PriceError as error:  # a missing price must not stop a plan or a deploy
        priced = [f"cost: not estimated: {error}"]
    return [*capacity.report(consumer, settings.jobs.rate), *priced]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="the stack to plan: its file is <stacks-dir>/Pulumi.<stack>.yaml")
    parser.add_argument("--write", action="store_true",
                        help="also rewrite tests/inventories/<stack>.yaml (default: only print)")
    parser.add_argument("--stacks-dir", type=Path, default=STACKS_DIR,
                        help="where the stack files are (default: %(default)s, Pulumi.yaml's stackConfigDir)")
    args = parser.parse_args(argv)
    try:
        plan = run_plan(args.stack, stack_config(args.stack, args.stacks_dir))
    except (pulumi.RunError, StackFileError) as error:
        print(error, file=sys.stderr)
        return 1
    text = inventory_yaml(plan)
    print(text, end="")
    # On stderr: stdout stays the reviewed inventory, byte for byte.
    print("\n".join(capacity_and_cost(plan)), file=sys.stderr)
    if args.write:
        INVENTORIES_DIR.mkdir(parents=True, exist_ok=True)
        (INVENTORIES_DIR / f"{args.stack}.yaml").write_text(text)
        print(f"wrote {INVENTORIES_DIR / f'{args.stack}.yaml'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
