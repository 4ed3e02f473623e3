"""Shared fixtures: a store on SQLite and on PostgreSQL for every test that asks for one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import DBAPIError

from models.store import Store

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


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stratmap.db'}"
    return _postgres_or_skip()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as opened:
        yield opened
