"""Shared fixtures: where the real sample files and the 3D Tiles judges are."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
TOOLS = SHARED / "tools"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"the shared sample data folder {DATA} is missing (clone the repo beside ../shared)")
    return DATA


@pytest.fixture(scope="session")
def shared_tools() -> Path:
    if not TOOLS.is_dir():
        pytest.fail(f"the shared tools folder {TOOLS} is missing (clone the repo beside ../shared)")
    return TOOLS
