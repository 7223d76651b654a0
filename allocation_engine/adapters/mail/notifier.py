"""Customer e-mail: Jinja2 templates in German and English, sent over SMTP.

Templates live in `allocation_engine/templates/<language>/<name>.j2`; each extends the
language's layout and fills two blocks, `subject` and `content`. They receive the context the
workflow recorded with the notification event (`order`, `customer`, `event`) plus `shop`.

Every message carries `Message-ID: <key@domain>` built from the notification's key, which is
stable across retries: the outbox may send a message twice after a crash (at least once), and
the copy carries the same Message-ID, so mail stores and clients that drop duplicate ids show it
once. `FolderNotifier` writes the same messages as .eml files, for the demo without a mail server.
"""

from __future__ import annotations

import datetime as dt
import os
import smtplib
import tempfile
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from allocation_engine.orders.model import LANGUAGES
from allocation_engine.ports.notifications import Notification, Undeliverable

DEFAULT_LANGUAGE = "en"


def _money(minor: int, currency: str, language: str) -> str:
    major = f"{abs(minor) / 100:,.2f}"
    if language == "de":
        major = major.replace(",", " ").replace(".", ",").replace(" ", ".")
        return f"{'-' if minor < 0 else ''}{major} {currency}"
    return f"{'-' if minor < 0 else ''}{currency} {major}"


def _day(seconds: float, language: str) -> str:
    day = dt.datetime.fromtimestamp(seconds, dt.UTC).date()
    return day.strftime("%d.%m.%Y") if language == "de" else day.strftime("%d %B %Y")


def _item_name(order: Mapping[str, Any], sku: str) -> str:
    return next((i["name"] for i in order["items"] if i["sku"] == sku), sku)


class MailRenderer:
    """Turns a notification into an e-mail message."""

    def __init__(self, sender: str, shop: str = "Allocation Engine Demo Shop") -> None:
        self.sender = sender
        self.domain = sender.rpartition("@")[2] or "localhost"
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("allocation_engine.adapters.mail", "templates"),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            autoescape=False,  # plain-text mail, never HTML
        )
        self.env.filters.update(money=_money, day=_day, item_name=_item_name)
        self.env.globals["shop"] = shop
        self.shop = shop

    def templates(self) -> frozenset[str]:
        """Template names present in every language."""
        root = resources.files(__package__).joinpath("templates")
        per_language = [
            {p.name.removesuffix(".j2") for p in root.joinpath(lang).iterdir()}
            for lang in LANGUAGES
        ]
        names = set.intersection(*per_language)
        return frozenset(n for n in names if not n.startswith("_"))

    def render(self, n: Notification) -> EmailMessage:
        """The message; `Undeliverable` when the template is missing or cannot render it."""
        language = n.language if n.language in LANGUAGES else DEFAULT_LANGUAGE
        context = dict(n.context)
        try:
            template = self.env.get_template(f"{language}/{n.template}.j2")
            subject = "".join(template.blocks["subject"](template.new_context(context))).strip()
            body = template.render(context).strip() + "\n"
        except jinja2.TemplateError as broken:
            raise Undeliverable(f"template {language}/{n.template}: {broken}") from broken
        message = EmailMessage()
        message["From"] = formataddr((self.shop, self.sender))
        message["To"] = formataddr((n.name, n.to))
        message["Subject"] = subject
        message["Message-ID"] = message_id(n.key, self.domain)
        message["Date"] = formatdate(usegmt=True)
        message["Content-Language"] = language
        message["X-Order-Id"] = str(context.get("order", {}).get("id", ""))
        message.set_content(body, cte="quoted-printable")
        return message


def message_id(key: str, domain: str) -> str:
    """The Message-ID for a notification key: the same key always gives the same id."""
    local = "".join(c if c.isalnum() or c in "-_." else "." for c in key)
    return f"<{local}@{domain}>"


class SmtpNotifier:
    """Sends each message in its own SMTP session (the outbox batches; sessions stay short)."""

    def __init__(
        self,
        host: str,
        port: int,
        renderer: MailRenderer,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.renderer = host, port, renderer
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout

    def send(self, notification: Notification) -> None:
        """Sends one message. A permanent refusal (5xx: no such mailbox, say) is
        `Undeliverable`; anything else (4xx, no connection) raises for a later retry."""
        message = self.renderer.render(notification)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as refused:
            codes = [code for code, _ in refused.recipients.values()]
            if all(code >= 500 for code in codes):
                raise Undeliverable(f"{notification.to}: refused {codes}") from refused
            raise
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as refused:
            if refused.smtp_code >= 500:
                raise Undeliverable(f"{notification.to}: {refused.smtp_code}") from refused
            raise


class FolderNotifier:
    """Writes each message to `<folder>/<message id>.eml`; a second copy replaces the first."""

    def __init__(self, folder: str | Path, renderer: MailRenderer) -> None:
        self.folder = Path(folder)
        self.renderer = renderer

    def send(self, notification: Notification) -> None:
        message = self.renderer.render(notification)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").partition("@")[0] + ".eml"
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(tmp, self.folder / name)
