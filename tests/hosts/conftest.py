"""Host verification suites: collected only when HYDRO_VERIFY_INVENTORY names an inventory file.

`make verify STACK=<stack>` builds the inventory from the stack's outputs (tests/hosts/inventory.py)
and runs these suites against the deployed hosts. In every other run (`make test`) the suites are
not collected at all, and the run's header says so; tests/monitoring/test_monitoring_host_suites.py
compiles them and checks what each covers instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from host_checks import RoleTarget
from inventory import INVENTORY_ENV, Inventory


def _inventory_path() -> Path | None:
    value = os.environ.get(INVENTORY_ENV)
    return Path(value) if value else None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not collection_path.name.startswith("test_host_"):
        return None
    path = _inventory_path()
    if path is None:
        return True
    if not path.is_file():
        raise pytest.UsageError(f"{INVENTORY_ENV}={path}: no such inventory file "
                                f"(make verify STACK=<stack> writes .verify/<stack>/inventory.json)")
    return None


def pytest_report_header(config: pytest.Config) -> str:
    path = _inventory_path()
    if path is None:
        return (f"host suites (tests/hosts/test_host_*.py): not collected; set {INVENTORY_ENV} to an "
                f"inventory (make verify STACK=<stack>) to run them")
    return f"host suites: inventory {path}"


def _load_inventory() -> Inventory:
    path = _inventory_path()
    assert path is not None, "the suites are collected only with an inventory"
    return Inventory.from_json(path.read_text())


@pytest.fixture(scope="session")
def inventory() -> Inventory:
    return _load_inventory()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`role`: every host of the suite's ROLES (module level; ROLE alone for a one-role suite), each
    its own test id, so three brokers are three checked hosts."""
    if "role" not in metafunc.fixturenames:
        return
    inventory = _load_inventory()
    names = getattr(metafunc.module, "ROLES", None) or (metafunc.module.ROLE,)
    targets = []
    for name in names:
        if name not in inventory.roles or not inventory.roles[name]:
            raise pytest.UsageError(f"inventory of stack {inventory.stack} has no host of role {name!r}")
        targets += [RoleTarget(inventory, name, index) for index in range(len(inventory.roles[name]))]
    metafunc.parametrize("role", targets, ids=[t.id for t in targets], scope="module")
