"""E-mail alerts through a real SMTP server (aiosmtpd on 127.0.0.1): the stratmap SMTP
Email block writes to the people the alert is for, at the addresses the plan gives them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from stratmap.flows.blocks import SmtpEmail
from stratmap.models.plan import Plan
from stratmap.models.report import Status
from stratmap.publish.changes import diff, due_alerts
from stratmap.publish.prefect_ui import deliver
from tests.test_alerts import NOW, report


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: email.message.EmailMessage


@dataclass
class Inbox:
    """What the SMTP server accepted."""

    messages: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      email.message_from_bytes(envelope.content,
                                                               policy=email.policy.default)))
        return "250 Message accepted for delivery"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                     auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == b"stratmap"
              and auth_data.password == b"s3cret-mail")
        if ok:
            inbox.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    port = _port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def plan() -> Plan:
    return Plan.model_validate({
        "version": 1, "name": "P", "leader": "alice",
        "people": {"alice": {"name": "Alice", "email": "alice@northwind.example"},
                   "bob": {"name": "Bob", "email": "bob@northwind.example"},
                   "carol": {"name": "Carol"}},
        "goals": [{"id": "g", "title": "G", "owner": "alice", "milestones": [
            {"id": "m", "title": "M", "owner": "bob"}]}],
        "alerts": {"channels": {"mail": "block:stratmap-smtp-email/ops"},
                   "routes": [{"on": ["at_risk", "off_track"],
                               "notify": ["owner", "leader", "carol"], "via": ["mail"]}]},
    })


def block(port: int, **overrides: Any) -> SmtpEmail:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port, "security": "none",
                              "username": "stratmap", "password": "s3cret-mail",
                              "from_address": "stratmap@northwind.example",
                              "to": ["pmo@northwind.example"], "timeout": 5}
    values.update(overrides)
    return SmtpEmail(**values)


def test_an_alert_is_mailed_to_the_people_it_is_for(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    p = plan()
    _, marks, subjects = diff({}, report(Status.AT_RISK), now=NOW)
    alerts = due_alerts(p, marks, subjects, now=NOW)
    delivered, failures = deliver(p, alerts, loader=lambda ref: block(port),
                                  sleep=lambda s: pytest.fail("no retry expected"))
    assert failures == [] and delivered == {k for a in alerts for k in a.keys}
    assert inbox.logins == ["stratmap"] * len(alerts)
    by_subject = {m.message["Subject"]: sorted(m.recipients) for m in inbox.messages}
    # The owner and the leader by their plan e-mails (carol has none), and the block's
    # fixed address; each address once.
    assert by_subject == {
        "stratmap · P · g: at risk": ["alice@northwind.example", "pmo@northwind.example"],
        "stratmap · P · g.m: at risk": ["alice@northwind.example", "bob@northwind.example",
                                        "pmo@northwind.example"],
    }
    first = inbox.messages[0]
    assert first.sender == "stratmap@northwind.example"
    assert first.message["Subject"].startswith("stratmap · P · ")
    text = first.message.get_content()
    assert "is now at risk" in text and "For: " in text
    assert "s3cret-mail" not in str(first.message)


def test_a_refused_login_fails_the_delivery_and_keeps_the_alert_due(
        smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    p = plan()
    _, marks, subjects = diff({}, report(Status.AT_RISK), now=NOW)
    alerts = due_alerts(p, marks, subjects, now=NOW)
    waits: list[float] = []
    delivered, failures = deliver(p, alerts, loader=lambda ref: block(port, password="wrong"),
                                  sleep=waits.append)
    assert delivered == set() and inbox.messages == []
    assert len(failures) == len(alerts)
    assert "refused the login of 'stratmap' (535)" in failures[0]
    assert "check the block's username and password" in failures[0]
    assert "wrong" not in " ".join(failures)
    assert waits == []  # a refused login is not retried


def test_notify_is_what_prefect_automations_call(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    mail = block(port)
    mail.notify("stalled: g.m", subject="stratmap test")  # a sync caller

    async def automation() -> None:  # Prefect's server awaits block.notify(...)
        await mail.notify("again, from an event loop", subject="async")

    asyncio.run(automation())
    assert [m.recipients for m in inbox.messages] == [["pmo@northwind.example"]] * 2
    assert [m.message["Subject"] for m in inbox.messages] == ["stratmap test", "async"]


def test_nobody_to_write_to_is_an_error_not_a_silent_success(smtp: tuple[Inbox, int]) -> None:
    _inbox, port = smtp
    with pytest.raises(ValueError, match="no recipient"):
        block(port, to=[]).send_alert([], "body", "subject")
