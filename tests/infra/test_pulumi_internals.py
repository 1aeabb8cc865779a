"""The private Pulumi internals the offline plan (infra/tools/mocks.py) relies on are still there.

A Pulumi upgrade may move or drop any of them without notice; this fails naming the internal and the
pinned version, instead of an ImportError deep in the plan or, worse, a plan that silently misses
secret markers. Checked without importing infra.tools.mocks, whose imports would fail first.
"""

import importlib
import importlib.metadata
import re

import pytest

from infra.paths import PROJECT_DIR

PLAN_SOURCE = (PROJECT_DIR / "infra" / "tools" / "mocks.py").read_text()
LOCKED = re.search(r"^pulumi==(\S+)$", (PROJECT_DIR / "requirements.lock").read_text(), re.MULTILINE).group(1)

# (module, dotted attribute) for every non-public name mocks.py uses.
INTERNALS = (
    ("pulumi.runtime.rpc", "_special_sig_key"),
    ("pulumi.runtime.rpc", "_special_secret_sig"),
    ("pulumi.runtime.rpc", "deserialize_properties"),
    ("pulumi.runtime.settings", "ROOT.set"),
    ("pulumi.runtime.settings", "SETTINGS.rpc_manager.clear"),
    ("pulumi.runtime.settings", "get_root_resource"),
    ("pulumi.runtime.stack", "run_pulumi_func"),
    ("pulumi.runtime.sync_await", "_sync_await"),
    ("pulumi.runtime.mocks", "MockMonitor.RegisterResource"),
)
# The registration fields RecordingMonitor reads from each request.
REQUEST_FIELDS = ("type", "name", "parent", "custom", "object", "protect", "deleteBeforeReplace",
                  "retainOnDelete", "dependencies", "ignoreChanges", "replaceOnChanges")
ALIASES = {"rpc": "pulumi.runtime.rpc", "runtime_settings": "pulumi.runtime.settings",
           "pulumi_mocks": "pulumi.runtime.mocks"}
PUBLIC_MOCKS = {"Mocks", "MockResourceArgs", "MockCallArgs", "set_mocks"}


def installed() -> str:
    return importlib.metadata.version("pulumi")


@pytest.mark.parametrize(("module", "attribute"), INTERNALS, ids=[f"{m}.{a}" for m, a in INTERNALS])
def test_each_internal_the_plan_uses_exists(module, attribute):
    found = importlib.import_module(module)
    for part in attribute.split("."):
        assert hasattr(found, part), (
            f"Pulumi internal {module}.{attribute} is gone (installed pulumi {installed()}, locked "
            f"{LOCKED}): infra/tools/mocks.py's comment at its import says what it did; find its "
            f"replacement in the new Pulumi before upgrading")
        found = getattr(found, part)


def test_the_registration_fields_the_monitor_reads_exist():
    from pulumi.runtime.proto import resource_pb2

    fields = resource_pb2.RegisterResourceRequest.DESCRIPTOR.fields_by_name
    missing = [name for name in REQUEST_FIELDS if name not in fields]
    assert not missing, (f"RegisterResourceRequest lacks {missing} (installed pulumi {installed()}, "
                         f"locked {LOCKED}): RecordingMonitor in infra/tools/mocks.py reads them")
    assert all(f"request.{name}" in PLAN_SOURCE for name in REQUEST_FIELDS)


def test_the_list_covers_every_internal_the_plan_names():
    uses = re.findall(r"\b(rpc|runtime_settings|pulumi_mocks)\.([A-Za-z_.]+)", PLAN_SOURCE)
    named = {(ALIASES[alias], attribute) for alias, attribute in uses}
    named |= {(module, name) for module, name in re.findall(
        r"^from (pulumi\.runtime\.\w+) import (\w+)$", PLAN_SOURCE, re.MULTILINE)}
    listed = {(module, attribute) for module, attribute in INTERNALS}
    listed_prefixes = {(module, attribute.split(".")[0]) for module, attribute in INTERNALS}
    unlisted = sorted((module, attribute) for module, attribute in named
                      if (module, attribute) not in listed
                      and (module, attribute.split(".")[0]) not in listed_prefixes
                      and not (module == "pulumi.runtime.mocks" and attribute in PUBLIC_MOCKS))
    assert not unlisted, f"infra/tools/mocks.py uses Pulumi internals this test does not check: {unlisted}"


def test_the_installed_pulumi_is_the_locked_one():
    assert installed() == LOCKED, (f"pulumi {installed()} is installed, requirements.lock pins {LOCKED}: "
                                   f"run `make venv`, then this module's checks hold for the pinned one")
