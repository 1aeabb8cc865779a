"""The README's configuration table lists every settings key with its real default."""

import dataclasses
import re

from infra import settings, sizing
from infra.paths import PROJECT_DIR

README = PROJECT_DIR / "README.md"
ROW = re.compile(r"^\| `hydrostream:(\w+)\.(\w+)` \| `([^`]*)` \|", re.MULTILINE)


def shown(value) -> str:
    if isinstance(value, sizing.MachineShape):
        return value.name
    if value is None:
        return "(none)"
    if isinstance(value, bool):  # as YAML spells it in a stack file
        return str(value).lower()
    return "[]" if value == () else str(value)


def test_every_settings_key_is_documented_with_its_default():
    documented = {(section, key): default for section, key, default in ROW.findall(README.read_text())}
    actual = {(name, f.name): shown(f.default)
              for name, cls in settings.SECTIONS.items() for f in dataclasses.fields(cls)}
    assert documented == actual
