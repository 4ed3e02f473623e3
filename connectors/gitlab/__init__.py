"""GitLab issues: :class:`GitlabConnector` (sync, selectors, assignee history from system
notes) and ``stratmap push`` (:mod:`connectors.gitlab.push`)."""

from stratmap.connectors.gitlab.connector import GitlabConnector, assignment_note, classify

__all__ = ["GitlabConnector", "assignment_note", "classify"]
