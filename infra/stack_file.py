"""A stack file (`stacks/Pulumi.<stack>.yaml`) read as the Pulumi CLI reads it.

The CLI parses stack files as YAML 1.2 (`yes`, `on` and `no` are strings, not booleans) and refuses a
key given twice; a key without a namespace belongs to the project. PyYAML reads YAML 1.1 and keeps
the last of two equal keys, so `make plan` read `protect: yes` as true and silently dropped a section
given twice, while `pulumi up` saw a string or failed. This module is the one reader of stack files,
for the plan and for promotion (which also writes them back with `yaml_1_2`), and its errors are one
line naming the file, the line and the column.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from infra.paths import PROJECT_DIR

_DUPLICATE_KEY: Final = re.compile(r'found duplicate key "(?P<key>.*?)" with value')


class StackFileError(ValueError):
    """A stack file that cannot be read; the message is one line naming the file and the place."""


def yaml_1_2() -> YAML:
    """A round-trip parser of the Pulumi CLI's reading: YAML 1.2 (ruamel's default unless a file's
    `%YAML` directive says otherwise; set explicitly, it would also be written out), duplicate keys
    refused, quotes kept and no line folded when a document is written back."""
    parser = YAML(typ="rt")
    parser.allow_duplicate_keys = False
    parser.preserve_quotes = True
    parser.width = 1 << 16
    return parser


def load_document(path: Path) -> Any:
    """`path` parsed as YAML 1.2 (ruamel's round-trip types), or a one-line `StackFileError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileError(f"{path}: cannot be read ({error})") from None
    try:
        return yaml_1_2().load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = " ".join(str(error.problem or error.context or "invalid YAML").split())
        duplicate = _DUPLICATE_KEY.match(problem)
        if duplicate:  # without the values ruamel quotes: a whole section would not fit on the line
            problem = f"duplicate key {duplicate['key']!r}"
        opened = error.context_mark
        unclosed = error.problem and str(error.context).startswith("while parsing")
        if unclosed and opened and mark.line != opened.line:
            # An unclosed bracket is found at the end of the file: say where it was opened too.
            problem += f" ({error.context} at line {opened.line + 1}, column {opened.column + 1})"
        raise StackFileError(f"{where}: {problem}") from None
    except YAMLError as error:
        raise StackFileError(f"{path}: {' '.join(str(error).split())}") from None


def plain(value: Any) -> Any:
    """ruamel's round-trip values as plain Python: dicts, lists, str, int, float, bool, None.

    A date stays the text it was written as (the CLI keeps it a string).
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, ScalarBoolean):  # an anchored true/false: an int subclass in ruamel
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    """The project's name in Pulumi.yaml: the namespace of a stack file's keys written without one."""
    document = load_document(project_dir / "Pulumi.yaml")
    return str(document["name"])


def stacks_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """Where the stack files are (`stackConfigDir` of Pulumi.yaml)."""
    document = load_document(project_dir / "Pulumi.yaml")
    return project_dir / str(document.get("stackConfigDir", "."))


def read_config(path: Path, project: str) -> dict[str, Any]:
    """A stack file's `config:` as `namespace:key` -> plain value, as the CLI hands it to the program."""
    document = load_document(path)
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise StackFileError(f"{path}: a stack file is a mapping with a `config:` key, not "
                             f"{type(plain(document)).__name__}")
    config = document.get("config")
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        line = document.lc.key("config")[0] + 1
        raise StackFileError(f"{path}:{line}:1: `config:` holds a mapping of `namespace:key: value`")
    values: dict[str, Any] = {}
    for key, value in config.items():
        name = str(key) if ":" in str(key) else f"{project}:{key}"
        if name in values:
            line, column = config.lc.key(key)
            raise StackFileError(f"{path}:{line + 1}:{column + 1}: {name} is given twice "
                                 f"(once as {key!r} without its namespace)")
        values[name] = plain(value)
    return values
