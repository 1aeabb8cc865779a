"""Pulumi program: validate the stack's settings, then declare its resources and export its outputs."""

import pulumi

from infra.settings import load_settings

settings = load_settings()  # raises before any resource is registered when the stack file is invalid

if settings.target == "local":
    from infra.local.stack import deploy
else:
    from infra.gcp.stack import deploy

for name, value in deploy(settings).items():
    pulumi.export(name, value)
