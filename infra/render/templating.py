"""Template plumbing for the renderers: the templates folder, Jinja with strict variables, block YAML.

One Jinja environment renders every template of the repository (the VMs' files under
infra/render/templates, and Prometheus', Alertmanager's and Grafana's under monitoring/), each named
by its path.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml

from infra.paths import PROJECT_DIR

TEMPLATES = PROJECT_DIR / "infra" / "render" / "templates"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(PROJECT_DIR),
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
    return render_file(TEMPLATES / name, **values)


def render_file(path: Path, **values: object) -> str:
    """The template at `path` (anywhere in the repository), every variable it uses given."""
    return _environment.get_template(path.relative_to(PROJECT_DIR).as_posix()).render(**values)


def render_text(text: str, origin: str, **values: object) -> str:
    """A template given as text (a copy outside the repository too); `origin` names it in errors."""
    try:
        return _environment.from_string(text).render(**values)
    except jinja2.TemplateError as error:
        raise ValueError(f"{origin}: {type(error).__name__}: {error}") from error


def template_text(name: str) -> str:
    """A template file's text as it is shipped (scripts are copied, not rendered)."""
    return (TEMPLATES / name).read_text()
