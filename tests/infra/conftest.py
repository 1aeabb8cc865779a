"""What the infra tests share: each stack's offline plan, run once per session (once per xdist worker).

The shared plans are read, never changed: a test that needs a different plan (other settings, a
monkeypatched module) runs its own with `mocks.run_plan`. At the end of the session each shared plan is
compared with a snapshot taken when it was made, so a test that changes one fails the session.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Iterator, Mapping

import pytest
import yaml

from infra.settings import STACKS
from infra.tools import mocks

GCP_STACKS = ("dev", "staging", "prod")


def roles_by_account(p: mocks.Plan) -> dict[str, str]:
    """Service account e-mail -> role, inverted from the plan's `service_accounts` output (role -> e-mail)."""
    return {email: role for role, email in p.outputs["service_accounts"].items()}


def stack_file(stack: str) -> dict:
    """A stack file's `config:` as written, read with plain YAML rather than the program's reader."""
    return yaml.safe_load((mocks.STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]


@pytest.fixture(scope="session")
def plans() -> Iterator[Mapping[str, mocks.Plan]]:
    """Stack -> its plan as `make plan` computes it, for local, dev, staging and prod."""
    planned = {stack: mocks.run_plan(stack) for stack in STACKS}
    # Pickled: assets (a bucket object's archive) have no equality, but their pickles compare.
    made = {stack: pickle.dumps(p) for stack, p in planned.items()}
    yield types.MappingProxyType(planned)
    changed = [stack for stack, p in planned.items() if pickle.dumps(p) != made[stack]]
    assert not changed, (f"a test changed the shared plan of {', '.join(changed)}: other tests read it; "
                         f"give that test its own plan (mocks.run_plan)")
