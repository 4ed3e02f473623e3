"""stratmap's Prefect blocks: tracker credentials kept in Prefect, never in the plan, and
e-mail alerts through any SMTP server.

Registered through the ``prefect.collections`` entry point, so a ``prefect server`` with
stratmap installed lists the block type without ``prefect block register``. This module is
imported on every ``import prefect``: keep it to pydantic and Prefect's block base.

A plan refers to a block by name: ``token: block:jira-northwind`` (this block type) or
``token: block:secret/jira-token`` (any block type, by slug).
"""

from __future__ import annotations

from typing import Literal

from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.blocks.abstract import NotificationBlock
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


class SmtpEmail(NotificationBlock):
    """E-mail through any SMTP server, addressed to the people an alert is for.

    Prefect's own e-mail block (SendGrid) needs a SendGrid account and fixed recipients;
    this one speaks SMTP to the company's server and, from stratmap's alerts, writes to the
    e-mail addresses the plan gives the people a route notifies (``notify: [owner,
    leader]``), plus ``to``. ``notify`` (what Prefect Automations call) writes to ``to``.
    """

    _block_type_name = "stratmap SMTP Email"
    _block_type_slug = "stratmap-smtp-email"
    _description = ("E-mail alerts through an SMTP server, to the people of the plan an alert "
                    "is for (their `email:`) and any fixed addresses.")
    _documentation_url = "https://stratmap.dev/docs/alerts"  # type: ignore[assignment]

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
        import asyncio

        await asyncio.to_thread(self.send_alert, [], body, subject)

    @async_dispatch(anotify)
    def notify(self, body: str, subject: str | None = None) -> None:  # type: ignore[override]
        self.send_alert([], body, subject)
