"""The local stack's one Docker network: containers reach each other by container name on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker


@dataclass(frozen=True)
class LocalNetworkArgs:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)


class LocalNetwork(pulumi.ComponentResource):
    """A user-defined bridge network (Docker's embedded DNS resolves container names only on those)."""

    def __init__(self, name: str, args: LocalNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hydrostream:local:Network", name, None, opts)
        network = docker.Network(
            name,
            name=args.name,
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in sorted(args.labels.items())],
            # A fixed name cannot exist twice, so a replacement must remove the old network first.
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.network_name: pulumi.Output[str] = network.name
        self.register_outputs({"network_name": self.network_name})
