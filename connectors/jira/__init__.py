"""Jira Cloud and Data Center: see :mod:`connectors.jira.connector`."""

from stratmap.connectors.jira.connector import JiraConnector
from stratmap.connectors.jira.jql import jql_quote
from stratmap.connectors.jira.transport import NotFound

__all__ = ["JiraConnector", "NotFound", "jql_quote"]
