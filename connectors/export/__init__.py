"""CSV exports of any tracker: :class:`ExportConnector` (sync only; an export cannot be
pushed to)."""

from stratmap.connectors.export.connector import ExportConnector

__all__ = ["ExportConnector"]
