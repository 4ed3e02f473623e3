"""Linear (source kind ``linear``): see :mod:`connectors.linear.connector`."""

from stratmap.connectors.linear.connector import LinearConnector

__all__ = ["LinearConnector"]
