"""The design's arrows are kept by a tool: `make lint` runs import-linter with the contracts in
pyproject.toml. Each test copies the sources into the namespace layout the wheel has, adds one
throwaway import that breaks a contract, and checks that import-linter fails naming it (and
passes on the untouched copy, so the failure is the throwaway import's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("flows", "connectors", "models", "judgement", "publish", "deployments")
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("arrows")
    for folder in FOLDERS:
        shutil.copytree(ROOT / folder, base / "stratmap" / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_sources_keep_every_contract(tree: Path) -> None:
    done = lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("judgement/throwaway.py", "from stratmap.models.store import Store",
     "judgement imports only models"),
    ("judgement/throwaway.py", "import prefect", "judgement imports only models"),
    ("connectors/throwaway.py", "from stratmap.flows import redact",
     "connectors never import flows or prefect"),
    ("connectors/throwaway.py", "import prefect", "connectors never import flows or prefect"),
    ("models/throwaway.py", "from stratmap.publish import markdown", "models import only models"),
    ("publish/throwaway.py", "from stratmap.models.store import Store",
     "publish takes data: never the store nor the engine"),
    ("publish/throwaway.py", "from stratmap.judgement import judge",
     "publish takes data: never the store nor the engine"),
])
def test_a_throwaway_import_breaking_a_contract_fails_lint(
        tree: Path, module: str, line: str, contract: str) -> None:
    path = tree / "stratmap" / module
    path.write_text(line + "  # throwaway\n", "utf-8")
    try:
        done = lint(tree)
    finally:
        path.unlink()
    assert done.returncode != 0, done.stdout
    verdicts = [line for line in done.stdout.splitlines() if line.startswith(contract)]
    assert verdicts and " BROKEN" in verdicts[0], done.stdout
    assert "throwaway" in done.stdout
