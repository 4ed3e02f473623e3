"""stratmap installed from its built wheel, beside a user's own Prefect project.

Most Prefect projects have a ``flows/`` folder and many a ``models/`` one, as packages or as
namespace folders. stratmap installs everything under ``stratmap.*``, so the user's
``flows``/``models`` stay theirs: their flow runs, stratmap runs from their folder, and
Prefect loads stratmap's collection (its blocks) without a warning. The editable install
of the development setup would hide a mistake here, so this test builds the wheel and
installs it into a fresh virtual environment, as a user does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration

USER_FLOW = '''\
from prefect import flow

from models.customer import greeting


@flow(name="customer-flow")
def customer_flow() -> str:
    return greeting()
'''

CHECK = '''\
import json, sys
from prefect.plugins import load_prefect_collections

collections = load_prefect_collections()
from flows.customer import customer_flow   # the user's, not stratmap's
from stratmap.flows.blocks import SmtpEmail, TrackerCredentials

result = customer_flow()                   # a real flow run (temporary local API)
print(json.dumps({
    "collections": {k: (type(v).__name__ if isinstance(v, Exception) else v.__name__)
                    for k, v in collections.items()},
    "flow": result,
    "blocks": sorted(c.get_block_type_slug() for c in (SmtpEmail, TrackerCredentials)),
}))
'''


def _run(args: list[str], *, cwd: Path, env: dict[str, str],
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("flows", "connectors", "models", "judgement", "publish", "deployments"):
        shutil.copytree(ROOT / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                  str(dist), str(source)], cwd=source, env=dict(os.environ))
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = dist.glob("stratmap-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment with the wheel and its dependencies, nothing else."""
    home = tmp_path_factory.mktemp("venv")
    made = _run([sys.executable, "-m", "venv", str(home)], cwd=home, env=dict(os.environ))
    assert made.returncode == 0, made.stderr
    installed = _run([str(home / "bin" / "python"), "-m", "pip", "install", "--quiet",
                      f"{wheel}[postgres]"], cwd=home, env=dict(os.environ), timeout=900)
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    yield home


def test_the_wheel_holds_only_the_stratmap_namespace(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names}
    assert tops == {"stratmap", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1]
                    + ".dist-info"}
    # A namespace package: no stratmap/__init__.py to clash over; every part is there.
    assert "stratmap/__init__.py" not in names
    for module in ("stratmap/flows/cli.py", "stratmap/flows/blocks.py",
                   "stratmap/models/store.py", "stratmap/judgement/engine.py",
                   "stratmap/connectors/jira/connector.py", "stratmap/publish/html.py",
                   "stratmap/models/migrations/env.py",
                   "stratmap/deployments/automations/goal-off-track.yaml",
                   "stratmap/models/templates/plan.yaml", "stratmap/flows/py.typed"):
        assert module in names, module
    assert any(n.startswith("stratmap/models/migrations/versions/0001") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "stratmap = stratmap.flows.cli:entry" in text
    assert "stratmap = stratmap.flows.blocks" in text


def _user_project(folder: Path, *, packages: bool) -> Path:
    (folder / "flows").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "flows" / "customer.py").write_text(USER_FLOW)
    (folder / "models" / "customer.py").write_text(
        "def greeting() -> str:\n    return 'hello from the user models'\n")
    if packages:
        (folder / "flows" / "__init__.py").write_text("")
        (folder / "models" / "__init__.py").write_text("")
    return folder


@pytest.mark.parametrize("packages", [True, False], ids=["packages", "namespace-folders"])
def test_beside_a_user_project_with_its_own_flows_and_models(
        venv: Path, tmp_path: Path, packages: bool) -> None:
    project = _user_project(tmp_path / "project", packages=packages)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
           "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",  # a loaded machine
           "PYTHONPATH": str(project)}  # as `prefect deploy` runs a project's flows
    python = str(venv / "bin" / "python")

    # The user's own flow runs, importing the user's own models; Prefect loads stratmap's
    # collection without "Failed to load collection".
    checked = _run([python, "-c", CHECK], cwd=project, env=env)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "Failed to load collection" not in checked.stdout + checked.stderr
    result = json.loads(checked.stdout.strip().splitlines()[-1])
    assert result["flow"] == "hello from the user models"
    assert result["collections"]["stratmap"] == "stratmap.flows.blocks"
    assert result["blocks"] == ["stratmap-smtp-email", "stratmap-tracker-credentials"]

    # stratmap runs the bundled sample from the user's folder, offline, on SQLite.
    sample = tmp_path / "northwind"
    shutil.copytree(EXAMPLES / "northwind", sample)
    report = tmp_path / "report.json"
    ran = _run([str(venv / "bin" / "stratmap"), "run", str(sample / "plan.yaml"),
                "--db", f"sqlite:///{tmp_path / 'store.db'}", "--as-of", "2027-03-01T09:00Z",
                "--json", str(report), "--no-prefect", "-q"], cwd=project, env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    judged = json.loads(report.read_text())
    assert judged["plan"] == "Northwind growth plan 2027"
    assert judged["findings"]
    # Every packaged file is found from the wheel: the HTML report's templates, the plan
    # template, the migrations (above).
    html = tmp_path / "report.html"
    reported = _run([str(venv / "bin" / "stratmap"), "report", str(sample / "plan.yaml"),
                     "--db", f"sqlite:///{tmp_path / 'store.db'}", "--as-of", "2027-03-01T09:00Z",
                     "--format", "html", "-o", str(html)], cwd=project, env=env)
    assert reported.returncode == 0, reported.stdout[-3000:] + reported.stderr[-3000:]
    assert "Northwind growth plan 2027" in html.read_text()
    made = _run([str(venv / "bin" / "stratmap"), "init", str(tmp_path / "new.yaml")],
                cwd=project, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "goals:" in (tmp_path / "new.yaml").read_text()
    # The user's files are untouched by the install and the run.
    assert sorted(p.name for p in (project / "models").iterdir()
                  if p.suffix == ".py") == (["__init__.py", "customer.py"] if packages
                                             else ["customer.py"])
