"""The checks every host of every role gets (one line of the issue's host verification list each),
parametrized over the hosts of the inventory (all brokers included) and the checks in host_checks.

Role-particular checks are in test_host_<role>.py; the Dataproc master has none beyond these (its GCP
variants, for Google's image, are in host_checks.PROFILES).
"""

from __future__ import annotations

import pytest
from host_checks import COMMON_CHECKS, PROFILES, run_common_check

ROLES = tuple(PROFILES)


@pytest.mark.parametrize("check", sorted(COMMON_CHECKS))
def test_host(role, check):
    run_common_check(check, role)
