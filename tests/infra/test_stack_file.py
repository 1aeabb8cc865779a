"""Stack files read as the Pulumi CLI reads them, and `make plan`'s answer to a broken one: one line."""

import subprocess
import sys
from pathlib import Path

import pytest

from infra import stack_file
from infra.paths import PROJECT_DIR
from infra.stack_file import StackFileError, read_config
from infra.tools import mocks

DEV = (mocks.STACKS_DIR / "Pulumi.dev.yaml").read_text()


def run_plan_cli(stacks_dir: Path, stack: str = "dev") -> subprocess.CompletedProcess:
    """`make plan`'s command, on a stack file of the test's own."""
    return subprocess.run([sys.executable, "-m", "infra.tools.plan", stack, "--stacks-dir", str(stacks_dir)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120)


def stacks_with(tmp_path: Path, text: str, stack: str = "dev") -> Path:
    folder = tmp_path / "stacks"
    folder.mkdir(exist_ok=True)
    (folder / f"Pulumi.{stack}.yaml").write_text(text)
    return folder


def refused_in_one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr


@pytest.mark.parametrize(("text", "line", "column", "problem"), [
    (DEV + "  hydrostream:network:\n    grafana_source_ranges: [203.0.113.0/24\n", 12, 1,
     "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence at line 11, column 28)"),
    (DEV + "  hydrostream:jobs:\n\trate: 10\n", 11, 1, "found character '\\t' that cannot start any token"),
    (DEV + "  hydrostream:kafka:\n    partitions: 3\n", 10, 3, "duplicate key 'hydrostream:kafka'"),
    (DEV + "  hydrostream:jobs:\n    rate: 10\n    rate: 20\n", 12, 5, "duplicate key 'rate'"),
])
def test_broken_yaml_is_one_line_with_the_file_line_and_column(tmp_path, text, line, column, problem):
    folder = stacks_with(tmp_path, text)
    message = refused_in_one_line(run_plan_cli(folder))
    assert message.count("\n") == 1, message
    assert message.startswith(f"{folder / 'Pulumi.dev.yaml'}:{line}:{column}: ")
    assert problem in message


def test_yes_is_a_string_as_the_cli_reads_it(tmp_path):
    # YAML 1.1 (PyYAML) read `yes` as true; the Pulumi CLI reads YAML 1.2, where it is a string.
    assert read_config(stacks_with(tmp_path, "config:\n  hydrostream:protect: yes\n") / "Pulumi.dev.yaml",
                       "hydrostream") == {"hydrostream:protect": "yes"}
    message = refused_in_one_line(run_plan_cli(stacks_with(tmp_path, DEV + "  hydrostream:protect: yes\n")))
    assert "hydrostream:protect = 'yes': expected true or false" in message


def test_a_key_without_namespace_is_the_project_s_and_may_not_repeat_a_namespaced_one(tmp_path):
    folder = stacks_with(tmp_path, "config:\n  jobs:\n    rate: 7\n  gcp:zone: z\n")
    assert read_config(folder / "Pulumi.dev.yaml", "hydrostream") == {
        "hydrostream:jobs": {"rate": 7}, "gcp:zone": "z"}
    folder = stacks_with(tmp_path, "config:\n  hydrostream:jobs: {}\n  jobs: {}\n")
    with pytest.raises(StackFileError, match=r"Pulumi.dev.yaml:3:3: hydrostream:jobs is given twice"):
        read_config(folder / "Pulumi.dev.yaml", "hydrostream")


def test_values_come_out_plain_and_dates_stay_text(tmp_path):
    folder = stacks_with(tmp_path, "config:\n  a:b: &x true\n  a:c: *x\n  a:d: [1, 2.5, 2026-01-01, ~]\n")
    config = read_config(folder / "Pulumi.dev.yaml", "hydrostream")
    assert config == {"a:b": True, "a:c": True, "a:d": [1, 2.5, "2026-01-01", None]}
    assert [type(v) for v in config["a:d"]] == [int, float, str, type(None)]
    assert type(config["a:c"]) is bool


def test_a_stack_file_that_is_no_mapping_is_named(tmp_path):
    with pytest.raises(StackFileError, match=r"a stack file is a mapping with a `config:` key, not list"):
        read_config(stacks_with(tmp_path, "- config\n") / "Pulumi.dev.yaml", "hydrostream")
    with pytest.raises(StackFileError, match=r"Pulumi.dev.yaml:1:1: `config:` holds a mapping"):
        read_config(stacks_with(tmp_path, "config: [1]\n") / "Pulumi.dev.yaml", "hydrostream")


def test_the_unknown_key_check_reads_the_stack_file_the_plan_was_given(tmp_path):
    # A namespace typo would be dropped unread; the plan of a stacks dir of the user's own names it.
    folder = stacks_with(tmp_path, DEV + "  hydrostrem:jobs:\n    rate: 10\n")
    message = refused_in_one_line(run_plan_cli(folder))
    assert "hydrostrem:jobs = {'rate': 10}: expected a key in a known namespace" in message


def test_a_missing_stack_file_names_the_known_ones(tmp_path):
    folder = stacks_with(tmp_path, DEV)
    message = refused_in_one_line(run_plan_cli(folder, "qa"))
    assert message == f"no stack file {folder / 'Pulumi.qa.yaml'}; known stacks: dev\n"


def test_the_project_s_name_and_stack_folder_come_from_pulumi_yaml():
    assert stack_file.project_name() == "hydrostream"
    assert stack_file.stacks_dir() == PROJECT_DIR / "stacks"
