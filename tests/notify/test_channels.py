"""Notice texts in every language, and the three channels against real servers: an SMTP server
(aiosmtpd), the SMS sandbox over HTTP, and a storefront endpoint."""

from __future__ import annotations

import json

import httpx
import pytest
from jinja2 import UndefinedError

from fulfill.notify.channels import (
    ChannelRefused,
    ChannelUnavailable,
    EmailChannel,
    Message,
    SmsChannel,
    WebhookChannel,
)
from fulfill.notify.templates import NoticeKind, languages, render
from fulfill.processes import LiveServer, free_port
from fulfill_carriers import SIGNATURE_HEADER, verify
from fulfill_carriers.sandboxes import SmsState
from fulfill_carriers.sandboxes import sms_sandbox_app as sandbox_app
from tests.support import Inbox, WebhookReceiver, smtp_server

CONTEXT = {
    "shop": "Tea House",
    "first_name": "Ada",
    "order_ref": "web-1001",
    "window": "today 11:00-14:00",
    "eta": "14:10-14:40",
    "tracking_url": "https://t.example/abc",
    "remedy": "a new slot tomorrow morning, or pick it up at our store",
    "remedy_url": "https://t.example/abc/slot",
    "remedy_action": "choose a slot",
    "reason": "nobody home",
    "next_step": "we try again tomorrow",
    "carrier": "Canada Post",
}


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("kind", list(NoticeKind))
def test_every_notice_has_every_part_in_every_language(kind: NoticeKind, language: str) -> None:
    rendered = render(kind, language, CONTEXT)
    assert rendered.language == language
    assert rendered.subject and "\n" not in rendered.subject
    assert "Tea House" in rendered.sms and "\n" not in rendered.sms
    assert "Ada" in rendered.text and rendered.html.startswith("<!doctype html>")


def test_languages_fall_back_to_english_and_nothing_is_left_blank() -> None:
    assert languages() == ["en", "fr"]
    assert render(NoticeKind.DELIVERED, "fr-CA", CONTEXT).language == "fr"
    assert render(NoticeKind.DELIVERED, "de", CONTEXT).language == "en"
    with pytest.raises(UndefinedError):
        render(NoticeKind.RUNNING_LATE, "en", {k: v for k, v in CONTEXT.items() if k != "eta"})
    html = render(NoticeKind.DELIVERED, "en", CONTEXT | {"first_name": "<script>"}).html
    assert "&lt;script&gt;" in html and "<script>" not in html


def message(to: str, kind: NoticeKind = NoticeKind.RUNNING_LATE, language: str = "fr") -> Message:
    return Message(f"notice-1:{to}", kind, to, render(kind, language, CONTEXT), {"order": "o-1"})


def test_email_goes_over_smtp_as_text_and_html_with_a_stable_message_id(
    smtp: tuple[int, Inbox],
) -> None:
    port, inbox = smtp
    channel = EmailChannel("127.0.0.1", port, "Tea House <notices@tea.example>")
    sent_id = channel.send(message("ada@example.com"))
    received = inbox.messages[0]
    assert received["Subject"] == "Désolés, votre livraison a du retard"
    assert received["Message-ID"] == sent_id == channel.send(message("ada@example.com"))
    assert received["Content-Language"] == "fr"
    parts = {p.get_content_type(): p for p in received.walk()}
    assert "14:10-14:40" in parts["text/plain"].get_payload(decode=True).decode()
    assert "<b>14:10-14:40</b>" in parts["text/html"].get_payload(decode=True).decode()


def test_email_refused_for_good_falls_back_deferred_or_down_is_tried_again(
    smtp: tuple[int, Inbox],
) -> None:
    port, _ = smtp
    channel = EmailChannel("127.0.0.1", port, "notices@tea.example")
    with pytest.raises(ChannelRefused, match="550"):
        channel.send(message("gone@example.com"))
    with pytest.raises(ChannelUnavailable, match="452"):
        channel.send(message("full@example.com"))
    nobody = EmailChannel("127.0.0.1", free_port(), "notices@tea.example", timeout_s=1)
    with pytest.raises(ChannelUnavailable):
        nobody.send(message("ada@example.com"))


def test_email_keeps_one_connection_and_opens_another_when_the_server_dropped_it() -> None:
    with smtp_server() as (port, inbox):
        channel = EmailChannel("127.0.0.1", port, "notices@tea.example")
        for k in range(3):
            channel.send(message(f"ada{k}@example.com"))
        assert len(inbox.messages) == 3 and len(set(inbox.peers)) == 1
    with smtp_server(port) as (_, restarted):  # the old connection is dead now
        channel.CHECK_AFTER_IDLE_S = 0.0  # an idle connection is checked before use
        channel.send(message("ada3@example.com"))
        channel.send(message("ada4@example.com"))
        assert len(restarted.messages) == 2 and len(set(restarted.peers)) == 1
        assert restarted.peers[0] not in inbox.peers
        channel.close()


def test_sms_goes_through_the_provider_once_per_key() -> None:
    state = SmsState()
    with LiveServer(sandbox_app(state)) as server:
        channel = SmsChannel(server.url)
        first = channel.send(message("+15550100", NoticeKind.OUT_FOR_DELIVERY, "en"))
        again = channel.send(message("+15550100", NoticeKind.OUT_FOR_DELIVERY, "en"))
        assert first == again and len(state.messages) == 1
        assert state.messages[0]["body"].startswith("Tea House: your parcel is out for delivery")
        with pytest.raises(ChannelRefused, match=r"E\.164"):
            channel.send(message("555-0100"))
        httpx.post(f"{server.url}/sandbox/trouble", json={"down": True})
        with pytest.raises(ChannelUnavailable, match="503"):
            channel.send(message("+15550199"))
        channel.close()


def test_the_storefront_webhook_is_signed_and_its_answers_are_understood() -> None:
    with WebhookReceiver(statuses=(204, 500, 410)) as receiver:
        channel = WebhookChannel("whsec_shop")
        assert channel.send(message(receiver.url)) == f"notice-1:{receiver.url}"
        headers, body = receiver.received[0]
        verify(body, headers[SIGNATURE_HEADER], "whsec_shop")
        sent = json.loads(body)
        assert (sent["kind"], sent["language"], sent["data"]) == (
            "running_late",
            "fr",
            {"order": "o-1"},
        )
        with pytest.raises(ChannelUnavailable, match="500"):
            channel.send(message(receiver.url))
        with pytest.raises(ChannelRefused, match="410"):
            channel.send(message(receiver.url))
        channel.close()
