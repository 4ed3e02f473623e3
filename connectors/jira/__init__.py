"""Jira Cloud and Data Center: see :mod:`connectors.jira.connector`."""

from connectors.jira.connector import JiraConnector
from connectors.jira.jql import jql_quote
from connectors.jira.transport import NotFound

__all__ = ["JiraConnector", "NotFound", "jql_quote"]
