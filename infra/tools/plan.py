"""`make plan`: the offline plan of a stack, the real program under Pulumi mocks, without a cloud or the CLI.

Prints the inventory (infra/tools/inventory.py: every resource with the values that matter, the stack
model's sizes and the outputs) and, on stderr, the consumer's capacity against the configured rate and
the monthly cost estimate (infra/tools/reports.py). The reviewed inventories live in
`tests/inventories/<stack>.yaml`; `make plan STACK=dev WRITE=1` rewrites one after a deliberate change.

    python -m infra.tools.plan dev [--write]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pulumi

from infra.stack_file import StackFileError
from infra.tools.inventory import INVENTORIES_DIR, inventory_yaml
from infra.tools.mocks import STACKS_DIR, run_plan, stack_config
from infra.tools.reports import capacity_and_cost


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stack", help="the stack to plan: its file is <stacks-dir>/Pulumi.<stack>.yaml")
    parser.add_argument("--write", action="store_true",
                        help="also rewrite tests/inventories/<stack>.yaml (default: only print)")
    parser.add_argument("--stacks-dir", type=Path, default=STACKS_DIR,
                        help="where the stack files are (default: %(default)s, Pulumi.yaml's stackConfigDir)")
    args = parser.parse_args(argv)
    try:
        plan = run_plan(args.stack, stack_config(args.stack, args.stacks_dir))
    except (pulumi.RunError, StackFileError) as error:
        print(error, file=sys.stderr)
        return 1
    text = inventory_yaml(plan)
    print(text, end="")
    # On stderr: stdout stays the reviewed inventory, byte for byte.
    print("\n".join(capacity_and_cost(plan)), file=sys.stderr)
    if args.write:
        INVENTORIES_DIR.mkdir(parents=True, exist_ok=True)
        (INVENTORIES_DIR / f"{args.stack}.yaml").write_text(text)
        print(f"wrote {INVENTORIES_DIR / f'{args.stack}.yaml'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
