"""The project directory (where Pulumi.yaml is), the one place a module finds the repository from."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PROJECT_DIR: Final = Path(__file__).resolve().parents[1]
