"""Linear (source kind ``linear``): see :mod:`connectors.linear.connector`."""

from connectors.linear.connector import LinearConnector

__all__ = ["LinearConnector"]
