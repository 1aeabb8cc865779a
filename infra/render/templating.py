"""Template plumbing for the renderers: the templates folder, Jinja with strict variables, block YAML."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
)


class _BlockDumper(yaml.SafeDumper):
    """Dumps multi-line strings as literal blocks so units and scripts read as files."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _represent_str)


def to_yaml(value: object, flow: bool = False) -> str:
    """YAML of `value`, multi-line strings as literal blocks, keys in their order (the `to_yaml` filter)."""
    return yaml.dump(value, Dumper=_BlockDumper, sort_keys=False, width=1_000_000,
                     default_flow_style=None if flow else False).rstrip("\n")


_environment.filters["to_yaml"] = to_yaml


def render_template(name: str, **values: object) -> str:
    """One template of infra/render/templates, every variable it uses given."""
    return _environment.get_template(name).render(**values)


def template_text(name: str) -> str:
    """A template file's text as it is shipped (scripts are copied, not rendered)."""
    return (TEMPLATES / name).read_text()
