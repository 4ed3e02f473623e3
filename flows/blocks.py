"""stratmap's Prefect blocks: tracker credentials kept in Prefect, never in the plan, and
e-mail alerts through any SMTP server.

Registered through the ``prefect.collections`` entry point, so a ``prefect server`` with
stratmap installed lists the block type without ``prefect block register``. This module is
imported on every ``import prefect``: keep it to pydantic and Prefect's block base.

A plan refers to a block by name: ``token: block:jira-northwind`` (this block type) or
``token: block:secret/jira-token`` (any block type, by slug).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Literal

from prefect.blocks.abstract import CredentialsBlock, NotificationBlock
from pydantic import Field, SecretStr

if TYPE_CHECKING:
    import httpx

DOCUMENTATION = "https://docs.prefect.io/v3/concepts/blocks"
"""No stratmap site exists: the blocks point at Prefect's page on blocks."""


class TrackerCredentials(CredentialsBlock):
    """The credentials of one tracker: an API token or personal access token.

    stratmap's connectors read the token through :meth:`get_token` (a plan says
    ``token: block:NAME``); :meth:`get_client` gives an authenticated HTTP client for
    one-off calls to the tracker's REST API.

    Example:
        Load stored credentials:
        ```python
        from stratmap.flows.blocks import TrackerCredentials

        credentials = TrackerCredentials.load("BLOCK_NAME")
        token = credentials.get_token()
        ```
    """

    _block_type_name = "stratmap Tracker Credentials"
    _block_type_slug = "stratmap-tracker-credentials"
    _description = (
        "An issue tracker's API token for stratmap (Jira Cloud API token with the account's "
        "e-mail, Jira Data Center personal access token, GitHub/GitLab token, Linear API key, "
        "Redmine key)."
    )
    _documentation_url = DOCUMENTATION  # type: ignore[assignment]

    token: SecretStr = Field(description="The API token, personal access token or key.")
    email: str | None = Field(
        default=None, description="Jira Cloud: the e-mail of the token's account."
    )
    url: str | None = Field(default=None, description="The tracker's base URL, for reference.")

    def get_token(self) -> str:
        """The token in clear, for the connector that sends it (never logged)."""
        return self.token.get_secret_value()

    def get_client(self) -> httpx.Client:
        """An HTTP client for the tracker at ``url``: basic auth with ``email`` (Jira
        Cloud), else the token as a bearer token."""
        import httpx

        auth = (httpx.BasicAuth(self.email, self.get_token()) if self.email else None)
        headers = {} if self.email else {"Authorization": f"Bearer {self.get_token()}"}
        return httpx.Client(base_url=self.url or "", auth=auth, headers=headers)


class SmtpEmail(NotificationBlock):
    """E-mail through any SMTP server, addressed to the people an alert is for.

    Prefect's own e-mail block (SendGrid) needs a SendGrid account and fixed recipients;
    this one speaks SMTP to the company's server and, from stratmap's alerts, writes to the
    e-mail addresses the plan gives the people a route notifies (``notify: [owner,
    leader]``), plus ``to``. ``notify`` (what Prefect Automations call) writes to ``to``.

    Example:
        Send a test message:
        ```python
        from stratmap.flows.blocks import SmtpEmail

        mail = SmtpEmail.load("BLOCK_NAME")
        mail.notify("stratmap can reach you", subject="stratmap test")
        ```
    """

    _block_type_name = "stratmap SMTP Email"
    _block_type_slug = "stratmap-smtp-email"
    _description = ("E-mail alerts through an SMTP server, to the people of the plan an alert "
                    "is for (their `email:`) and any fixed addresses.")
    _documentation_url = DOCUMENTATION  # type: ignore[assignment]

    host: str = Field(description="The SMTP server, e.g. smtp.northwind.example.")
    port: int = Field(default=587, description="587 with STARTTLS, 465 with TLS, 25 plain.")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (port 587), tls (port 465), or none.")
    username: str | None = Field(default=None, description="Login, if the server asks.")
    password: SecretStr | None = Field(default=None, description="The login's password.")
    from_address: str = Field(description="The sender, e.g. stratmap@northwind.example.")
    to: list[str] = Field(default_factory=list,
                          description="Addresses that get every alert (besides the people).")
    timeout: float = Field(default=30.0, gt=0, description="Seconds per SMTP exchange.")

    def send_alert(self, recipients: list[str], body: str, subject: str | None = None) -> None:
        """One message to ``recipients`` and ``to`` (each address once). stratmap's alert
        delivery calls this with the notified people's addresses."""
        import smtplib
        import ssl
        from email.message import EmailMessage

        addresses = list(dict.fromkeys([*recipients, *self.to]))
        if not addresses:
            raise ValueError("no recipient: none of the people has an e-mail in the plan and "
                             "the block has no `to`")
        message = EmailMessage()
        message["From"] = self.from_address
        message["To"] = ", ".join(addresses)
        message["Subject"] = subject or "stratmap"
        message.set_content(body)
        context = ssl.create_default_context()
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            if self.security == "tls" else smtplib.SMTP(self.host, self.port, timeout=self.timeout))
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username:
                try:
                    smtp.login(self.username,
                               self.password.get_secret_value() if self.password else "")
                except smtplib.SMTPAuthenticationError as error:
                    # Permanent: retrying a refused login only locks the account sooner.
                    raise PermissionError(
                        f"the SMTP server {self.host} refused the login of {self.username!r} "
                        f"({error.smtp_code}): check the block's username and password"
                    ) from None
            smtp.send_message(message, to_addrs=addresses)

    async def anotify(self, body: str, subject: str | None = None) -> None:
        await asyncio.to_thread(self.send_alert, [], body, subject)

    def notify(  # type: ignore[override]
            self, body: str, subject: str | None = None) -> Coroutine[Any, Any, None] | None:
        """Send to ``to``: awaitable inside an event loop (Prefect's server awaits it for
        Automations), at once from synchronous code."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.send_alert([], body, subject)
            return None
        return self.anotify(body, subject)
