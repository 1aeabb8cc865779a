"""infra/paths.py: the one project directory every module finds the repository from."""

from pathlib import Path

from infra.paths import PROJECT_DIR


def test_the_project_dir_is_the_checkout_that_holds_pulumi_yaml():
    assert Path(__file__).resolve().parents[2] == PROJECT_DIR
    assert (PROJECT_DIR / "Pulumi.yaml").is_file()
    assert (PROJECT_DIR / "infra" / "paths.py").is_file()
