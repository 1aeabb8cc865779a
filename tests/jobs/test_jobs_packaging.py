"""The job modules work from one zip, as on Dataproc (--py-files), with the same imports as locally."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.join(ROOT, "jobs", "hydrostream_jobs")


def test_the_package_imports_from_a_zip_and_the_entry_files_only_import_it(tmp_path):
    bundle = tmp_path / "hydrostream_jobs.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for name in sorted(os.listdir(PACKAGE)):
            if name.endswith(".py"):
                archive.write(os.path.join(PACKAGE, name), f"hydrostream_jobs/{name}")
    modules = sorted(
        name[:-3] for name in os.listdir(PACKAGE) if name.endswith(".py") and name != "__init__.py"
    )
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import importlib\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module('hydrostream_jobs.' + name)\n"
        "    assert module.__file__.startswith(sys.argv[1]), module.__file__\n"
    )
    # -I: isolated, so the editable install cannot be what gets imported; pyspark comes from site-packages.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    done = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.append({site!r}); {script}", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for entry in ("consumer.py", "producer.py"):
        with open(os.path.join(ROOT, "jobs", entry), encoding="utf-8") as handle:
            imports = [line for line in handle if line.startswith(("import ", "from "))]
        assert all(line.split()[1].split(".")[0] in ("sys", "hydrostream_jobs") for line in imports), imports
