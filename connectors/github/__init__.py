"""GitHub Issues: :class:`GithubConnector` (sync, selectors) and ``stratmap push``
(:mod:`connectors.github.push`)."""

from stratmap.connectors.github.connector import GithubConnector, classify, due_day

__all__ = ["GithubConnector", "classify", "due_day"]
