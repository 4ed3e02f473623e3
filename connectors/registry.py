"""Builds the connector for a plan's source. Trackers' modules are imported only when used."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stratmap.connectors.base import Connector, FatalSourceError
from stratmap.models.plan import (
    AzureDevopsSource,
    ExportSource,
    GithubSource,
    GitlabSource,
    JiraSource,
    LinearSource,
    RedmineSource,
    Source,
)

SecretResolver = Callable[[str, str], str]
"""(source name, env:/block: reference) -> the secret's value."""


def build_connector(name: str, source: Source, *, plan_dir: Path,
                    secret: SecretResolver) -> Connector:
    """The connector for ``source``; relative export paths are read from ``plan_dir``."""
    if isinstance(source, ExportSource):
        from stratmap.connectors.export import ExportConnector

        path = Path(source.path)
        return ExportConnector(name, path if path.is_absolute() else plan_dir / path,
                               fmt=source.kind, status_done=source.status_done)
    if isinstance(source, JiraSource):
        from stratmap.connectors.jira import JiraConnector

        return JiraConnector(name, source, token=secret(name, source.token))
    if isinstance(source, RedmineSource):
        from stratmap.connectors.redmine import RedmineConnector

        token = secret(name, source.token) if source.token else None
        return RedmineConnector(name, source, token=token)
    if isinstance(source, GithubSource):
        from stratmap.connectors.github import GithubConnector

        return GithubConnector(
            name, source, token=secret(name, source.token) if source.token else None)
    if isinstance(source, GitlabSource):
        from stratmap.connectors.gitlab import GitlabConnector

        return GitlabConnector(
            name, source, token=secret(name, source.token) if source.token else None)
    if isinstance(source, LinearSource):
        from stratmap.connectors.linear import LinearConnector

        return LinearConnector(name, source, secret(name, source.token))
    if isinstance(source, AzureDevopsSource):
        from stratmap.connectors.azure_devops import AzureDevopsConnector

        return AzureDevopsConnector(name, source, token=secret(name, source.token))
    raise FatalSourceError(
        name, f"this version of stratmap has no {source.kind} connector yet",
        hint="sync it to a CSV/JSON lines export meanwhile (kind: csv or jsonl)",
    )
