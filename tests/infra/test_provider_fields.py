"""Every input field the program sets is one the provider accepts: enforced from docs/provider-fields.md.

Mocks accept any input. The audit table names, per resource type, each field path the program may set
and whether the provider lets it be configured; this test walks what the four stacks' plans really set
(nested fields included, through the SDK's own types) and refuses anything the table does not list as
configurable.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

from infra.paths import PROJECT_DIR
from infra.settings import STACKS
from infra.tools import mocks

TABLE = PROJECT_DIR / "docs" / "provider-fields.md"
SDK_PACKAGES = {"gcp": "pulumi_gcp", "docker": "pulumi_docker", "random": "pulumi_random"}
_ROW = re.compile(r"\|\s*`([^`]+)`\s*\|\s*`([^`]+)`\s*\|\s*(yes|no)\s*\|\s*(.+?)\s*\|\s*")
_TOKEN = re.compile(r"(\w+):([\w/]+)/\w+:(\w+)")
_ARGS_REF = re.compile(r"ForwardRef\('(\w+Args)'\)")


def audit_table(path: Path = TABLE) -> dict[tuple[str, str], bool]:
    """(resource type, field path) -> configurable, from the markdown table; a duplicate row is an error."""
    rows: dict[tuple[str, str], bool] = {}
    for line in path.read_text().splitlines():
        match = _ROW.fullmatch(line.strip())
        if match is None:
            continue
        key = (match.group(1), match.group(2))
        assert key not in rows, f"{path.name}: {key} is listed twice"
        assert match.group(4).strip(), f"{path.name}: {key} does not say where it was read"
        rows[key] = match.group(3) == "yes"
    return rows


def sdk_args(resource_type: str) -> tuple[type, object]:
    """The SDK's `<Name>Args` class of a resource type token, and the module its nested types live in."""
    package, module, name = _TOKEN.fullmatch(resource_type).groups()
    found = importlib.import_module(SDK_PACKAGES[package] if module == "index"
                                    else f"{SDK_PACKAGES[package]}.{module}")
    return getattr(found, f"{name}Args"), found


def sdk_fields(args_class: type) -> dict[str, tuple[str, str, str | None]]:
    """Input name -> (python name, kind: object/list/map/scalar, nested Args class name) of an Args class."""
    fields = {}
    for python_name, parameter in inspect.signature(args_class.__init__).parameters.items():
        prop = getattr(args_class, python_name, None)
        if not isinstance(prop, property):
            continue
        annotation = repr(parameter.annotation)
        nested = _ARGS_REF.search(annotation)
        if annotation.startswith("typing.Union[typing.Mapping["):
            kind = "map"
        elif nested and annotation.startswith("typing.Union[typing.Sequence["):
            kind = "list"
        elif nested:
            kind = "object"
        else:
            kind = "scalar"
        fields[getattr(prop.fget, "_pulumi_name", python_name)] = (
            python_name, kind, nested.group(1) if nested else None)
    return fields


def set_paths(resource_type: str, inputs: dict) -> set[str]:
    """Every field path the inputs set, descending into nested objects and lists of objects, not maps."""
    args_class, module = sdk_args(resource_type)
    paths: set[str] = set()

    def walk(value: dict, cls: type | None, prefix: str) -> None:
        fields = sdk_fields(cls) if cls is not None else {}
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            _, kind, nested = fields.get(key, (None, "unknown", None))
            nested_class = getattr(module, nested) if nested else None
            if kind in ("object", "unknown") and isinstance(item, dict):
                walk(item, nested_class, path)
            elif kind in ("list", "unknown") and isinstance(item, list):
                for element in item:
                    if isinstance(element, dict):
                        walk(element, nested_class, f"{path}[]")

    walk(inputs, args_class, "")
    return paths


def violations(planned: list[mocks.Plan], table: dict[tuple[str, str], bool]) -> list[str]:
    """What the plans set that the table does not list as configurable, each with the row to add or fix."""
    found = set()
    for one in planned:
        for resource in one.resources:
            if resource.custom:
                found |= {(resource.type, path) for path in set_paths(resource.type, resource.inputs)}
    problems = []
    for resource_type, path in sorted(found):
        listed = table.get((resource_type, path))
        if listed is None:
            problems.append(
                f"{resource_type} sets `{path}`, which {TABLE.name} does not list. Check it in the SDK's "
                f"Args and the provider's schema (argument vs attribute reference), then add: "
                f"| `{resource_type}` | `{path}` | yes | <SDK file Args.field>; <upstream schema file> |")
        elif not listed:
            problems.append(f"{resource_type} sets `{path}`, which {TABLE.name} lists as NOT configurable "
                            f"(computed by the provider): the real provider rejects it; set the "
                            f"configurable field instead")
    return problems


def test_every_field_the_four_stacks_set_is_listed_as_configurable(plans):
    problems = violations([plans[stack] for stack in STACKS], audit_table())
    assert not problems, "\n".join(problems)


def test_the_dataproc_cluster_properties_row_is_the_computed_one():
    table = audit_table()
    assert table[("gcp:dataproc/cluster:Cluster", "clusterConfig.softwareConfig.properties")] is False
    assert table[("gcp:dataproc/cluster:Cluster", "clusterConfig.softwareConfig.overrideProperties")] is True


def test_a_computed_or_unlisted_field_is_reported_with_the_row_to_add(plans, tmp_path):
    cluster = next(r for r in plans["dev"].resources if r.type == "gcp:dataproc/cluster:Cluster")
    software = cluster.inputs["clusterConfig"]["softwareConfig"]
    wrong = dict(software, properties=software["overrideProperties"])
    moved = mocks.PlannedResource(**{**cluster.__dict__, "inputs": {
        **cluster.inputs, "clusterConfig": {**cluster.inputs["clusterConfig"], "softwareConfig": wrong}}})
    one = mocks.Plan("dev", [moved], {}, frozenset())
    problems = violations([one], audit_table())
    assert problems == [
        "gcp:dataproc/cluster:Cluster sets `clusterConfig.softwareConfig.properties`, which "
        "provider-fields.md lists as NOT configurable (computed by the provider): the real provider "
        "rejects it; set the configurable field instead"]
    unlisted = tmp_path / "provider-fields.md"
    unlisted.write_text("\n".join(line for line in TABLE.read_text().splitlines()
                                  if "`clusterConfig.tempBucket`" not in line))
    problems = violations([plans["dev"]], audit_table(unlisted))
    assert problems == [
        "gcp:dataproc/cluster:Cluster sets `clusterConfig.tempBucket`, which provider-fields.md does not "
        "list. Check it in the SDK's Args and the provider's schema (argument vs attribute reference), "
        "then add: "
        "| `gcp:dataproc/cluster:Cluster` | `clusterConfig.tempBucket` | yes | <SDK file Args.field>; "
        "<upstream schema file> |"]


def test_every_row_names_a_field_the_pinned_sdk_has():
    for (resource_type, path), configurable in audit_table().items():
        cls, module = sdk_args(resource_type)
        segments = path.replace("[]", "").split(".")
        for depth, segment in enumerate(segments):
            fields = sdk_fields(cls)
            assert segment in fields, f"{resource_type} `{path}`: the SDK's {cls.__name__} has no `{segment}`"
            python_name, _, nested = fields[segment]
            if depth < len(segments) - 1:
                assert nested, f"{resource_type} `{path}`: `{segment}` has no nested fields"
                cls = getattr(module, nested)
        docstring = getattr(cls, python_name).fget.__doc__ or ""
        if configurable:
            # pulumi-gcp marks most computed nested attributes "(Output)"; none of them may be listed "yes".
            assert not docstring.strip().startswith("(Output)"), f"{resource_type} `{path}`: {docstring[:80]}"
