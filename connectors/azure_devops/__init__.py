"""Azure DevOps Boards: :class:`AzureDevopsConnector` (sync, selectors, ``stratmap push``)."""

from stratmap.connectors.azure_devops.connector import AzureDevopsConnector

__all__ = ["AzureDevopsConnector"]
