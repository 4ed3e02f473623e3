"""Jira Cloud and Data Center: see :mod:`connectors.jira.connector`."""

from stratmap.connectors.base import NotFound
from stratmap.connectors.jira.connector import JiraConnector
from stratmap.connectors.jira.jql import jql_quote

__all__ = ["JiraConnector", "NotFound", "jql_quote"]
