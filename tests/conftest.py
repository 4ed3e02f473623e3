"""Shared fixtures: a store on SQLite and on PostgreSQL for every test that asks for one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from stratmap.connectors.jira import JiraConnector
from stratmap.models.store import Store
from tests.browser import Browser, chromium, required
from tests.fakes.jira_server import FakeClock, FakeJira, connector_for

# Test tiers: a test that starts a server (prefect server, Redmine, Chromium, a virtual
# environment with the built wheel) is `integration`; every other test is in the fast tier
# (`make test-fast`, `pytest -m "not integration"`). CI runs both (`make test`).
SERVERS = frozenset({"browser", "redmine_server", "server", "venv"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if SERVERS.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


# Prefect's temporary (ephemeral) API server gets 20 s to start by default; on a loaded CI
# machine it can take longer, which fails a run before stratmap does anything. Subprocesses
# inherit this.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

PG_URL = os.environ.get("STRATMAP_TEST_PG_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


_session_database: dict[str, str] = {}


def _private_database() -> str:
    """A database of this test session's own on the PostgreSQL server, created on first use.

    Test runs on one machine (a developer's and CI's, say) then never reset each other's
    tables. Falls back to the configured database where databases cannot be created.
    """
    if "url" in _session_database:
        return _session_database["url"]
    name = f"stratmap_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        _session_database["created"] = name
    except DBAPIError:
        url = PG_URL
    finally:
        admin.dispose()
    _session_database["url"] = url
    return url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    name = _session_database.get("created")
    if name is None:
        return
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _reset_postgres(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _postgres_or_skip() -> str:
    """A fresh, empty PostgreSQL database URL (skip, or fail in CI, without a server)."""
    try:
        url = _private_database()
        _reset_postgres(url)
    except Exception as error:
        if os.environ.get("STRATMAP_REQUIRE_PG"):
            pytest.fail(f"PostgreSQL is required here but unreachable at {PG_URL}: {error}")
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stratmap.db'}"
    return _postgres_or_skip()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Headless Chromium for a module's page tests (a skip, or a failure in CI, without it)."""
    executable = chromium()
    if executable is None:
        if required():
            pytest.fail("Chromium is required here (STRATMAP_REQUIRE_BROWSER) but not installed")
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    opened = Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield opened
    finally:
        opened.close()


Connect = Callable[..., JiraConnector]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Build Jira connectors against a fake server; all are closed after the test."""
    made: list[JiraConnector] = []

    def build(fake: FakeJira, *, clock: FakeClock | None = None, **config: Any) -> JiraConnector:
        connector: JiraConnector = connector_for(fake, clock=clock, **config)
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()
