"""Redmine: :class:`RedmineConnector` (sync, selectors) and ``stratmap push``
(:mod:`connectors.redmine.push`)."""

from stratmap.connectors.redmine.connector import RedmineConnector, format_since

__all__ = ["RedmineConnector", "format_since"]
