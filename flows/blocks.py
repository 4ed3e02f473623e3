"""stratmap's Prefect blocks: tracker credentials kept in Prefect, never in the plan.

Registered through the ``prefect.collections`` entry point, so a ``prefect server`` with
stratmap installed lists the block type without ``prefect block register``. This module is
imported on every ``import prefect``: keep it to pydantic and Prefect's block base.

A plan refers to a block by name: ``token: block:jira-northwind`` (this block type) or
``token: block:secret/jira-token`` (any block type, by slug).
"""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class TrackerCredentials(Block):
    """The credentials of one tracker: an API token or personal access token."""

    _block_type_name = "stratmap Tracker Credentials"
    _block_type_slug = "stratmap-tracker-credentials"
    _description = (
        "An issue tracker's API token for stratmap (Jira Cloud API token with the account's "
        "e-mail, Jira Data Center personal access token, GitHub/GitLab token, Linear API key, "
        "Redmine key)."
    )
    _documentation_url = "https://stratmap.dev/docs/credentials"  # type: ignore[assignment]

    token: SecretStr = Field(description="The API token, personal access token or key.")
    email: str | None = Field(
        default=None, description="Jira Cloud: the e-mail of the token's account."
    )
    url: str | None = Field(default=None, description="The tracker's base URL, for reference.")

    def get_token(self) -> str:
        return self.token.get_secret_value()
