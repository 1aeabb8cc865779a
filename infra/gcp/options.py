"""Resource options and outputs the GCP components share: children that wait with their component, and
outputs that resolve only once what makes them usable (grants, stored versions) exists."""

from __future__ import annotations

from typing import Any, TypeVar

import pulumi

T = TypeVar("T")


def child_options(parent: pulumi.Resource, opts: pulumi.ResourceOptions | None,
                  **options: Any) -> pulumi.ResourceOptions:
    """Options for a component's child: parented to it and waiting for what the component waits for.

    Pulumi does not pass a component's `depends_on` on to its children: without this, a child could be
    created before the APIs (or the NAT) its component was told to wait for.
    """
    return pulumi.ResourceOptions(parent=parent, depends_on=opts.depends_on if opts else None, **options)


def once(value: pulumi.Input[T], *waits_for: pulumi.Input[Any]) -> pulumi.Output[T]:
    """`value`, resolved only once every one of `waits_for` has resolved.

    A consumer of the output (a VM, the cluster) then waits for the grants it needs without naming them.
    """
    return pulumi.Output.all(value, *waits_for).apply(lambda parts: parts[0])
