"""The real Pulumi program under mocks: what it would register and export, without a cloud or the CLI.

`run_plan(stack)` runs `infra/__main__.py` against `pulumi.runtime.set_mocks` with a monitor that also
records what mocks normally cannot see (protect, delete-before-replace, dependencies, secret inputs);
`run_components(stack, declare)` declares components directly, from the stack's model, the way the
component tests do. `make plan` (infra/tools/plan.py) prints what a plan holds.
"""

from __future__ import annotations

import hashlib
import json
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

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
from infra.model import StackModel, derive
from infra.paths import PROJECT_DIR
from infra.stack_file import StackFileError, read_config

PROGRAM = PROJECT_DIR / "infra" / "__main__.py"
STACKS_DIR = stack_file.stacks_dir()
PROJECT = stack_file.project_name()
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
    settings: Any = None                # the checked settings (stack_settings.StackSettings)
    model: StackModel | None = None     # what the program derived from them

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
    plan.settings, plan.model = namespace.get("settings"), namespace.get("model")
    return plan


def run_components(stack: str, declare: Callable[[StackModel], Mapping[str, Any]],
                   config: Mapping[str, Any] | None = None, *, preview: bool = True) -> Plan:
    """Declare components directly under mocks, from `stack`'s model, and return what they registered.

    `declare` gets the stack model and returns the outputs to export: component tests build one
    component with the builder the stack's wiring uses (infra/gcp/stack.py), without the whole program.
    """
    config = stack_config(stack) if config is None else config
    settings = stack_settings.parse_settings(stack, config)
    model = derive(settings)

    def body() -> None:
        for key, value in declare(model).items():
            pulumi.export(key, value)

    plan = _run(stack, config, body, preview=preview, monitor=None)
    plan.settings, plan.model = settings, model
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
