"""Every operator tool answers --help: each option and argument with what it means and its default."""

import re
import subprocess
import sys

import pytest

from infra.paths import PROJECT_DIR

# command -> defaults its help must show (what an operator gets when leaving the option out).
TOOLS = {
    ("-m", "infra.tools.plan"): ["default: only print", f"default: {PROJECT_DIR / 'stacks'}"],
    ("-m", "infra.tools.job_status", "wait"): ["default 15m", "default: <stack>", "default: 15.0"],
    ("-m", "infra.tools.job_status", "urn"): ["consumer, producer"],
    ("-m", "infra.release.bundle"): [],
    ("-m", "infra.release.promote"): ["default: this one"],
    ("-m", "infra.tools.restore_target"): [],
    ("-m", "infra.tools.replace_target"): [],
    ("tests/hosts/inventory.py",): [],
}
ENTRY = re.compile(r"^  (\S.*)$")


def entries(help_text: str) -> dict[str, str]:
    """Each option or argument of a help screen (argparse's layout) -> its help text, joined."""
    found: dict[str, str] = {}
    name = None
    for line in help_text.splitlines():
        if line and not line.startswith(" "):
            name = None  # a section header: "options:", "positional arguments:"
            continue
        match = ENTRY.match(line)
        if match:
            name, *text = re.split(r" {2,}", match.group(1), maxsplit=1)
            found[name] = " ".join(text)
        elif name is not None and line.strip():
            found[name] = f"{found[name]} {line.strip()}".strip()
    return found


@pytest.mark.parametrize("command", TOOLS, ids=lambda c: " ".join(c))
def test_every_option_says_what_it_does_and_its_default(command):
    done = subprocess.run([sys.executable, *command, "--help"], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    options = {name: text for name, text in entries(done.stdout).items() if not name.startswith("-h")}
    assert options, done.stdout
    assert all(options.values()), {name: text for name, text in options.items() if not text}
    text = " ".join(done.stdout.split())
    for default in TOOLS[command]:
        assert default in text, (default, done.stdout)
