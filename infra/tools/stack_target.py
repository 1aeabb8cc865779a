"""The command line the stack-target tools share: a GCP stack's name in, KEY=VALUE lines of where its
VMs and buckets are out (from its model: the names the program deploys), for the operator scripts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

import pulumi

from infra.model import StackModel, derive
from infra.settings import parse_settings
from infra.stack_file import StackFileError
from infra.tools.mocks import stack_config


def main(description: str, target_of: Callable[[StackModel], Mapping[str, str]],
         argv: Sequence[str] | None = None) -> int:
    """Print `target_of(<the stack's model>)` as KEY=VALUE lines; a bad stack is one line on stderr."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="a GCP stack (dev, staging, prod): stacks/Pulumi.<stack>.yaml")
    stack = parser.parse_args(argv).stack
    try:
        target = target_of(derive(parse_settings(stack, stack_config(stack))))
    except (ValueError, pulumi.RunError, StackFileError) as error:
        print(error, file=sys.stderr)
        return 1
    for key, value in target.items():
        print(f"{key}={value}")
    return 0
