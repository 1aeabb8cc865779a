"""The GCP environment (dev, staging, prod): every component, wired together."""

from __future__ import annotations

from typing import Any

import pulumi

from infra.settings import StackSettings


def deploy(settings: StackSettings) -> dict[str, Any]:
    """Declare the environment's resources; return the stack outputs."""
    pulumi.log.info(f"{settings.stack}: no GCP components yet")
    return {"stack": settings.stack}
