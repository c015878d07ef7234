"""The outside channels of notifications: e-mail over SMTP, SMS through Twilio's official client,
WhatsApp through the Cloud API. A transport takes a rendered message and an address and returns
the provider's message id, or raises `DeliveryError` saying whether a retry could help."""

from __future__ import annotations

import re
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import requests
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from doorstep.config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
SMS_MAX = 1600  # Twilio's limit for one message body
WHATSAPP_MAX = 4096
E164 = re.compile(r"^\+[1-9]\d{6,14}$")

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class DeliveryError(Exception):
    """A channel could not deliver. `permanent`: the same message would fail again (a refused
    recipient, a malformed number), so it is not retried."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason[:1000]
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    media_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    html: str | None = None
    # Stable per delivery, so a retried e-mail carries the same Message-ID as its first attempt.
    reference: str | None = None
    attachments: tuple[Attachment, ...] = ()  # e-mail only


@dataclass(frozen=True, slots=True)
class Content:
    """What a notification says, and the branding it is said with."""

    title: str
    body: str
    link: str | None
    type_label: str
    tenant_name: str
    brand_color: str
    site_url: str

    @property
    def url(self) -> str | None:
        return f"{self.site_url}{self.link}" if self.link else None


def render(channel: str, content: Content, *, reference: str | None = None) -> Message:
    """The message a channel sends: e-mail has HTML and text bodies, SMS and WhatsApp text."""
    context: dict[str, Any] = {"n": content, "url": content.url, "site_url": content.site_url}
    if channel == "email":
        return Message(
            subject=content.title,
            text=_env.get_template("email/notification.txt").render(context).strip() + "\n",
            html=_env.get_template("email/notification.html").render(context),
            reference=reference,
        )
    text = _env.get_template("sms/notification.txt").render(context).strip()
    limit = SMS_MAX if channel == "sms" else WHATSAPP_MAX
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return Message(subject=content.title, text=text, reference=reference)


class Transport(Protocol):
    def send(self, address: str, message: Message) -> str | None:
        """Hand the message to the provider; returns its message id."""


def transport_for(channel: str, settings: Settings) -> Transport | None:
    """The configured transport of a channel, or None when the channel is not set up."""
    if channel == "email" and settings.smtp_host:
        return SmtpTransport(settings)
    if (
        channel == "sms"
        and settings.twilio_account_sid
        and settings.twilio_auth_token
        and settings.twilio_from
    ):
        return TwilioTransport(settings)
    if channel == "whatsapp" and settings.whatsapp_token and settings.whatsapp_phone_number_id:
        return WhatsAppTransport(settings)
    return None


def not_configured_reason(channel: str) -> str:
    needs = {
        "email": "DOORSTEP_SMTP_HOST",
        "sms": "DOORSTEP_TWILIO_ACCOUNT_SID, DOORSTEP_TWILIO_AUTH_TOKEN and DOORSTEP_TWILIO_FROM",
        "whatsapp": "DOORSTEP_WHATSAPP_TOKEN and DOORSTEP_WHATSAPP_PHONE_NUMBER_ID",
    }
    return f"The {channel} channel is not configured (set {needs.get(channel, 'it up')})"


def phone_number(raw: str | None) -> str:
    """A user's phone as E.164 (+15551234567), or DeliveryError(permanent) when it is not one."""
    if not raw:
        raise DeliveryError("The user has no phone number", permanent=True)
    number = re.sub(r"[\s().-]", "", raw)
    if number.startswith("00"):
        number = "+" + number[2:]
    if not E164.match(number):
        raise DeliveryError(
            f"The phone number {raw!r} is not in international format (+country code)",
            permanent=True,
        )
    return number


def _permanent_http(status: int) -> bool:
    # A 4xx says this request is wrong (bad number, blocked recipient) and will stay wrong;
    # credentials (401/403), timeouts and rate limits may recover, so those are retried.
    return 400 <= status < 500 and status not in (401, 403, 408, 409, 425, 429)


# --- e-mail ---------------------------------------------------------------------------------


@dataclass
class SmtpTransport:
    settings: Settings

    def _message_id(self, reference: str | None) -> str | None:
        if reference is None:
            return None
        domain = parseaddr(self.settings.smtp_from)[1].rpartition("@")[2] or "doorstep.localhost"
        return f"<{reference}@{domain}>"

    def send(self, address: str, message: Message) -> str | None:
        cfg = self.settings
        email = EmailMessage()
        email["Subject"] = message.subject
        email["From"] = cfg.smtp_from
        email["To"] = address
        email["Date"] = formatdate(usegmt=True)
        message_id = self._message_id(message.reference)
        if message_id:
            email["Message-ID"] = message_id
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
        for item in message.attachments:
            maintype, _, subtype = item.media_type.partition("/")
            email.add_attachment(
                item.data, maintype=maintype, subtype=subtype, filename=item.filename
            )
        assert cfg.smtp_host is not None
        try:
            with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=cfg.smtp_timeout_seconds) as s:
                if cfg.smtp_starttls:
                    s.starttls(context=ssl.create_default_context())
                if cfg.smtp_username:
                    s.login(cfg.smtp_username, cfg.smtp_password or "")
                s.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            detail = "; ".join(
                f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values()
            )
            raise DeliveryError(f"SMTP refused {address}: {detail}", permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
            permanent = isinstance(exc, smtplib.SMTPDataError) and 500 <= exc.smtp_code < 600
            raise DeliveryError(f"SMTP {exc.smtp_code}: {text}", permanent=permanent) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {type(exc).__name__}: {exc}") from exc
        return message_id


# --- SMS through Twilio -----------------------------------------------------------------------


class BaseUrlHttpClient(TwilioHttpClient):
    """Twilio's own HTTP client, pointed at another base URL (a proxy, or a test double).

    The official way to change how the helper library talks HTTP is to hand `Client` an
    `http_client`; this one rewrites `https://*.twilio.com` to `base_url` and changes nothing
    else, so requests, authentication and error handling stay Twilio's."""

    def __init__(self, base_url: str, *, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Any:
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("twilio.com"):
            url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


@dataclass
class TwilioTransport:
    settings: Settings

    def client(self) -> TwilioClient:
        cfg = self.settings
        http_client = (
            BaseUrlHttpClient(cfg.twilio_base_url, timeout=cfg.channel_timeout_seconds)
            if cfg.twilio_base_url
            else TwilioHttpClient(timeout=cfg.channel_timeout_seconds)
        )
        return TwilioClient(cfg.twilio_account_sid, cfg.twilio_auth_token, http_client=http_client)

    def send(self, address: str, message: Message) -> str | None:
        to = phone_number(address)
        sender = self.settings.twilio_from or ""
        # A Messaging Service SID (MG...) lets Twilio pick the sender from its pool.
        origin = {"messaging_service_sid": sender} if sender.startswith("MG") else {"from_": sender}
        try:
            sent = self.client().messages.create(to=to, body=message.text, **origin)
        except TwilioRestException as exc:
            raise DeliveryError(
                f"Twilio {exc.status} (code {exc.code}): {exc.msg}",
                permanent=_permanent_http(exc.status),
            ) from exc
        except (TwilioException, requests.RequestException) as exc:
            raise DeliveryError(f"Twilio {type(exc).__name__}: {exc}") from exc
        return str(sent.sid)


# --- WhatsApp Cloud API -----------------------------------------------------------------------


@dataclass
class WhatsAppTransport:
    settings: Settings

    def payload(self, to: str, message: Message) -> dict[str, Any]:
        cfg = self.settings
        base: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to.lstrip("+"),
        }
        if cfg.whatsapp_template:
            # Outside a 24-hour customer-service window WhatsApp accepts only approved templates;
            # the template's body takes the title and the text as its two parameters.
            return {
                **base,
                "type": "template",
                "template": {
                    "name": cfg.whatsapp_template,
                    "language": {"code": cfg.whatsapp_template_language},
                    "components": [
                        {
                            "type": "body",
                            "parameters": [
                                {"type": "text", "text": message.subject},
                                {"type": "text", "text": message.text},
                            ],
                        }
                    ],
                },
            }
        return {**base, "type": "text", "text": {"preview_url": False, "body": message.text}}

    def send(self, address: str, message: Message) -> str | None:
        cfg = self.settings
        url = f"{cfg.whatsapp_base_url.rstrip('/')}/{cfg.whatsapp_phone_number_id}/messages"
        try:
            response = httpx.post(
                url,
                json=self.payload(phone_number(address), message),
                headers={"Authorization": f"Bearer {cfg.whatsapp_token}"},
                timeout=cfg.channel_timeout_seconds,
            )
        except httpx.HTTPError as exc:
            raise DeliveryError(f"WhatsApp {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or not isinstance(body, dict):
            error = body.get("error", {}) if isinstance(body, dict) else {}
            detail = error.get("message") or response.text[:300] or response.reason_phrase
            code = f" (code {error['code']})" if "code" in error else ""
            raise DeliveryError(
                f"WhatsApp {response.status_code}{code}: {detail}",
                permanent=_permanent_http(response.status_code),
            )
        messages = body.get("messages") or [{}]
        return str(messages[0].get("id")) if messages[0].get("id") else None
