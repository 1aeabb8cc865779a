"""Pulumi program: check the stack's settings, derive its model, declare its resources, export its outputs."""

import pulumi

from infra.model import derive
from infra.settings import load_settings, receiver_secret_values

settings = load_settings()  # raises before any resource is registered when the stack file is invalid
model = derive(settings)

if model.target == "local":
    from infra.local.stack import deploy as deploy_local

    outputs = deploy_local(model)
else:
    from infra.gcp.stack import deploy as deploy_gcp

    # The receivers' secrets come from Pulumi's secret config: read here, never part of the model.
    outputs = deploy_gcp(model, receiver_secret_values(settings.alerting))

for name, value in outputs.items():
    pulumi.export(name, value)
