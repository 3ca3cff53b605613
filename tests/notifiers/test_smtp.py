from __future__ import annotations

import email
import socket
from email.message import Message as EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifiers.base import Attachment, NotifierError, Recipient
from notifiers.smtp import SmtpNotifier
from tests.notifiers.conftest import assert_no_leak, message


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.refuse: set[str] = set()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((envelope, email.message_from_bytes(envelope.content)))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtpd():
    inbox = Inbox()
    port = free_port()  # aiosmtpd's start-up check cannot use port 0
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def mailer(port: int, secrets: Any, **options: Any) -> SmtpNotifier:
    opts = {
        "host": "127.0.0.1",
        "port": port,
        "security": "plain",
        "from_addr": "sla@12345.example",
        **options,
    }
    return SmtpNotifier.from_options("mail", opts, secrets=secrets)


def test_sends_text_html_and_attachment(smtpd, secrets):
    inbox, port = smtpd
    report = Attachment("超期通报.xlsx", b"PK\x03\x04", "application/vnd.ms-excel")
    mailer(port, secrets).send(message(html="<p>工单即将超期</p>", attachments=(report,)))
    ((envelope, mail),) = inbox.messages
    assert envelope.rcpt_tos == ["zhangsan@example.org"]
    assert str(email.header.make_header(email.header.decode_header(mail["Subject"]))) == "工单即将超期"
    parts = {p.get_content_type(): p for p in mail.walk()}
    assert "工单" in parts["text/plain"].get_payload(decode=True).decode()
    assert "<p>工单即将超期</p>" in parts["text/html"].get_payload(decode=True).decode()
    assert parts["application/vnd.ms-excel"].get_payload(decode=True) == b"PK\x03\x04"
    assert parts["application/vnd.ms-excel"].get_filename() == "超期通报.xlsx"


def test_refused_recipient_is_permanent(smtpd, secrets):
    inbox, port = smtpd
    inbox.refuse.add("zhangsan@example.org")
    with pytest.raises(NotifierError) as exc:
        mailer(port, secrets).send(message())
    assert exc.value.permanent and inbox.messages == []


def test_recipient_without_email_is_permanent(smtpd, secrets):
    _, port = smtpd
    with pytest.raises(NotifierError) as exc:
        mailer(port, secrets).send(message(recipient=Recipient("张三", mobile="13812346654")))
    assert exc.value.permanent and "尾号6654" in exc.value.reason
    assert_no_leak(exc.value)


def test_unreachable_server_is_transient(secrets, caplog):
    notifier = mailer(free_port(), secrets, password={"env": "SMTP_PASSWORD"}, username="sla", timeout=0.5)
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert not exc.value.permanent
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)


def test_login_refused_is_permanent_and_password_not_leaked(smtpd, secrets, caplog):
    _, port = smtpd  # the plain test server offers no AUTH: login fails
    notifier = mailer(port, secrets, username="sla", password={"env": "SMTP_PASSWORD"})
    with pytest.raises(NotifierError) as exc:
        notifier.send(message())
    assert exc.value.permanent and exc.value.__cause__ is None
    assert_no_leak(exc.value, notifier, notifier.options, caplog=caplog)
