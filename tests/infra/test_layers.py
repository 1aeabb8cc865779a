"""The layers of infra/: settings are read by the model, the program's entry point and the tools only;
components and renderers get narrow Args from the stacks' wiring and know neither settings nor model.

Read from the import statements of every module (the AST), so a function-level import counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from infra.paths import PROJECT_DIR

INFRA = PROJECT_DIR / "infra"
# Who may read the checked settings: the model derives from them, the entry point loads them (and the
# receivers' secret config), the tools parse a stack file to plan, promote or locate a stack.
SETTINGS_READERS = {"infra/model.py", "infra/__main__.py", "infra/release/promote.py"}
# Who may read the model: the wiring of each target, and the same readers.
MODEL_READERS = {"infra/gcp/stack.py", "infra/local/stack.py", "infra/__main__.py"}


def module_of(path: Path) -> str:
    return path.relative_to(PROJECT_DIR).as_posix()


def imports(path: Path) -> set[str]:
    """Every module `path` imports (`from a import b` counts as a and a.b)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def is_tool(module: str) -> bool:
    return module.startswith("infra/tools/")


MODULES = sorted(INFRA.rglob("*.py"))


def importers_of(target: str) -> set[str]:
    return {module_of(path) for path in MODULES if target in imports(path)}


def test_settings_are_imported_by_the_model_the_entry_point_and_tools_only():
    readers = importers_of("infra.settings")
    beyond = sorted(m for m in readers - SETTINGS_READERS if not is_tool(m))
    assert not beyond, f"{beyond} import infra.settings: give them what they use from the model instead"
    assert "infra/model.py" in readers  # the check reads real imports


def test_the_model_is_imported_by_the_wiring_and_tools_only():
    readers = importers_of("infra.model")
    beyond = sorted(m for m in readers - MODEL_READERS if not is_tool(m))
    assert not beyond, f"{beyond} import infra.model: components take narrow Args from the wiring"
    assert {"infra/gcp/stack.py", "infra/local/stack.py"} <= readers


@pytest.mark.parametrize("source", [
    "from infra.settings import JobsSettings\n",
    "import infra.settings\n",
    "def f():\n    from infra import settings\n",
])
def test_the_check_sees_every_form_of_import(tmp_path, source):
    path = tmp_path / "component.py"
    path.write_text(source)
    assert "infra.settings" in imports(path)
