"""Email (电子邮件) through an SMTP relay: HTML body with a plain-text alternative, and attachments."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Literal, Self

from pydantic import Field

from notifiers.base import Clock, Message, Notifier, NotifierError, Receipt
from notifiers.secrets import ChannelOptions, SecretResolver, SecretValue


class SmtpOptions(ChannelOptions):
    host: str = Field(min_length=1)
    port: int | None = Field(None, ge=1, le=65535, description="default 465 for ssl, else 587/25")
    security: Literal["starttls", "ssl", "plain"] = "starttls"
    username: str | None = None
    password: SecretValue | None = None
    from_addr: str = Field(min_length=3)
    timeout: float = Field(10.0, gt=0)


class SmtpNotifier(Notifier):
    type_name = "smtp"
    formats = ("txt", "html")
    quiet_hours_by_default = False

    def __init__(self, name: str, options: SmtpOptions) -> None:
        super().__init__(name)
        self.options = options

    @classmethod
    def from_options(
        cls, name: str, options: Mapping[str, Any], *, secrets: SecretResolver, clock: Clock = time.monotonic
    ) -> Self:
        return cls(name, SmtpOptions.parse(name, options, secrets))

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.name!r}, host={self.options.host!r})"

    def build(self, message: Message) -> EmailMessage:
        to = message.recipient.email
        if not to:
            raise NotifierError(
                f"{self.name}: {message.recipient.masked} has no email address", permanent=True
            )
        email = EmailMessage()
        email["From"] = self.options.from_addr
        email["To"] = to
        email["Subject"] = message.subject
        email["Message-ID"] = make_msgid(domain=self.options.from_addr.rpartition("@")[2] or None)
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for att in message.attachments:
            maintype, _, subtype = att.mime_type.partition("/")
            email.add_attachment(
                att.content, maintype=maintype, subtype=subtype or "octet-stream", filename=att.filename
            )
        return email

    def send(self, message: Message) -> Receipt:
        email = self.build(message)
        o = self.options
        try:
            with self._connect() as client:
                if o.username and o.password:
                    client.login(o.username, o.password.reveal())
                client.send_message(email)
        except smtplib.SMTPNotSupportedError:
            raise NotifierError(f"{self.name}: server does not offer SMTP AUTH", permanent=True) from None
        except smtplib.SMTPRecipientsRefused:
            raise NotifierError(
                f"{self.name}: recipient refused by the mail server", permanent=True
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise NotifierError(
                f"{self.name}: SMTP login refused ({exc.smtp_code})",
                permanent=True,
                provider_code=str(exc.smtp_code),
            ) from None
        except smtplib.SMTPResponseException as exc:
            # 4xx is the server's "try again later"; 5xx will not change by retrying
            raise NotifierError(
                f"{self.name}: SMTP error {exc.smtp_code}",
                permanent=exc.smtp_code >= 500,
                provider_code=str(exc.smtp_code),
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifierError(f"{self.name}: cannot talk to {o.host} ({type(exc).__name__})") from None
        return Receipt(provider_message_id=email["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        o = self.options
        if o.security == "ssl":
            return smtplib.SMTP_SSL(
                o.host, o.port or 465, timeout=o.timeout, context=ssl.create_default_context()
            )
        client = smtplib.SMTP(o.host, o.port or (587 if o.security == "starttls" else 25), timeout=o.timeout)
        if o.security == "starttls":
            try:
                client.starttls(context=ssl.create_default_context())
            except BaseException:
                client.close()
                raise
        return client
