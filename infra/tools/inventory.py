"""The reviewed form of a plan (tests/inventories/<stack>.yaml): every resource with the values that
matter, the model's sizes and the stack outputs.

A service VM's cloud-config is shown as the containers it runs (image, user, environment, volumes,
health check) and the host ports it opens; property maps (cluster and job properties) are shown whole;
`sizing:` is the stack model's summary (Spark sizes, each service VM's shape and what its service is
given). So a heap, an image or a property change reads as a diff of its own line. Long text
(cloud-init, scripts) reads as its length and digest.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

import yaml

from infra.paths import PROJECT_DIR
from infra.release import bundle
from infra.tools.mocks import Plan

INVENTORIES_DIR = PROJECT_DIR / "tests" / "inventories"

# Input properties worth reviewing in an inventory, wherever they appear in a resource's inputs.
KEY_FIELDS = frozenset({
    "accountId", "allows", "autoCreateSubnetworks", "bootDiskSizeGb", "canIpForward", "clusterName",
    "deletionProtection", "denies", "destinationRanges", "direction", "enableComponentGateway",
    "enableSecureBoot", "enableVtpm", "enableIntegrityMonitoring", "forceDestroy", "idleDeleteTtl",
    "image", "imageVersion", "internalIpOnly", "ipCidrRange", "keepLocallyFlag", "location",
    "machineType", "maxFailuresPerHour", "maxFailuresTotal", "member", "members", "mainPythonFileUri",
    "natIpAllocateOption", "numInstances", "ports", "privateIpGoogleAccess", "pythonFileUris",
    "jarFileUris", "role", "secretId", "serviceAccount", "size", "sourceRanges", "sourceServiceAccounts",
    "sourceSubnetworkIpRangesToNat", "sourceTags", "storageClass", "tags", "targetServiceAccounts",
    "targetTags", "uniformBucketLevelAccess", "versioning", "zone", "region", "type", "jobId", "restart",
    "publishPort", "internal", "external", "ip", "volumeName", "containerPath", "readOnly", "args",
    "protocol", "enable-oslogin", "user-data", "secretData", "properties", "overrideProperties",
    "hydrostream-config-bundle", "envs",
    "maxRetentionDays", "onSourceDiskDelete", "startTime", "daysInCycle", "storageLocations", "disk",
    "age", "daysSinceNoncurrentTime", "serviceAccountId", "stopSignal",
})
# Mapping-valued fields shown whole (their keys hold dots and colons, e.g. `spark:spark.executor.memory`).
MAP_FIELDS = frozenset({"properties", "overrideProperties", "versioning"})
INSTANCE = "gcp:compute/instance:Instance"
SECRET = "[secret]"
_JOB_ID = re.compile(r"hydro-(consumer|producer)-[0-9a-f]{16}-[0-9a-f]{8}")


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
        elif word in ("--user", "--health-cmd", "--network", "--pid", "--stop-signal"):
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


def _releases(plan: Plan) -> set[str]:
    built = plan.model.bundle if plan.model is not None else bundle.build_bundle(bundle.JOBS_DIR)
    found = {built.digest}
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
    if plan.model is not None and plan.model.gcp is not None:
        result["sizing"] = plan.model.summary()
    result["outputs"] = {k: SECRET if k in plan.secret_outputs else _short(v)
                         for k, v in sorted(plan.outputs.items())}
    result["resources"] = resources
    return _without_release(result, _releases(plan))


def inventory_yaml(plan: Plan) -> str:
    return yaml.safe_dump(inventory(plan), sort_keys=False, width=120, allow_unicode=True)
