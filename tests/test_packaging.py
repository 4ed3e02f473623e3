"""Every package folder of the design ships: the wheel lists packages explicitly (the
``package-dir`` mapping of the design card's folders onto ``stratmap.*``), so a new folder
that is not listed would be missing from every install but the editable one."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    found = set()
    for name, folder in setuptools["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found, "no package folder found"
    assert found - listed == set(), "package folders missing from [tool.setuptools] packages"


def test_each_tracker_has_the_same_layout() -> None:
    """One connector shape: a package per tracker, its sync in ``connector.py`` and, for a
    tracker stratmap writes to, ``stratmap push`` in ``push.py``."""
    trackers = [p for p in (ROOT / "connectors").iterdir() if p.is_dir()
                and (p / "__init__.py").exists()]
    assert len(trackers) >= 7
    for tracker in trackers:
        assert (tracker / "connector.py").exists(), tracker.name
        if tracker.name != "export":  # a CSV export cannot be written back
            assert (tracker / "push.py").exists(), tracker.name
    # Shared modules, and the readers of a plan's measures (CSV, SQL, Prometheus), which are
    # not trackers: no tracker lives in a single module.
    assert not [p.name for p in (ROOT / "connectors").glob("*.py")
                if p.stem not in {"__init__", "base", "http", "labelled", "registry", "measures",
                                  "transport_errors"}]


def test_a_jira_run_loads_neither_httpx_nor_prefect() -> None:
    """What a Jira-only `stratmap run` imports: the jira library's requests, not httpx
    (GitHub, GitLab, Linear, Redmine and Prometheus measures load it when asked) and not
    Prefect (a local run without an API): each import was a tenth of a run that changed
    nothing."""
    import subprocess
    import sys

    probe = ("import sys, stratmap.flows.cli, stratmap.flows.run, stratmap.flows.present, "
             "stratmap.connectors.jira.connector, stratmap.connectors.registry; "
             "print(sorted(m for m in ('httpx', 'prefect') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == "[]"
