"""The cards a team's chat channel is shown: Slack and Microsoft Teams messages about a share.

Pure functions from what a channel is told (`ShareCard`) to the JSON each chat service takes;
`notifications.chat` posts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fieldcast.models.integrations import WebhookKind

# Slack refuses a section's text past 3000 characters.
SLACK_SECTION_MAX = 3000


@dataclass(frozen=True)
class ShareCard:
    """What a channel is told about a share."""

    sender: str
    title: str
    message: str
    link: str


def mrkdwn_escape(text: str) -> str:
    """User text for Slack's mrkdwn: `&`, `<` and `>` are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quote(text: str, budget: int) -> str:
    """`text` escaped and quoted line by line, cut (with …) to at most `budget` characters."""
    quoted = "\n".join(f">{mrkdwn_escape(line)}" for line in text.splitlines())
    if len(quoted) <= budget:
        return quoted
    cut = quoted[: max(0, budget - 1)]
    # Never leave half an entity (`&am`) behind.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def slack_message(card: ShareCard) -> dict[str, Any]:
    """A Slack incoming-webhook message: a fallback `text` (notifications, old clients) and
    blocks with the sender, title and message, and a Watch button."""
    headline = f"*{mrkdwn_escape(card.sender)}* shared *{mrkdwn_escape(card.title)}*"
    text = headline
    if card.message.strip():
        text += "\n" + _quote(card.message.strip(), SLACK_SECTION_MAX - len(headline) - 1)
    return {
        "text": f"{mrkdwn_escape(card.sender)} shared {mrkdwn_escape(card.title)}: {card.link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Watch"},
                        "url": card.link,
                        "style": "primary",
                    }
                ],
            },
        ],
    }


def _text_run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def teams_message(card: ShareCard) -> dict[str, Any]:
    """An Adaptive Card message, as Teams Workflows and classic incoming webhooks take it.

    User text goes into TextRuns, which Teams shows as written (TextBlocks would render it as
    Markdown, links included).
    """
    body: list[dict[str, Any]] = [
        {
            "type": "RichTextBlock",
            "inlines": [_text_run(card.sender, weight="Bolder"), _text_run(" shared a video")],
        },
        {
            "type": "RichTextBlock",
            "inlines": [_text_run(card.title, size="Large", weight="Bolder")],
        },
    ]
    if card.message.strip():
        body.append({"type": "RichTextBlock", "inlines": [_text_run(card.message.strip())]})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": [{"type": "Action.OpenUrl", "title": "Watch", "url": card.link}],
                },
            }
        ],
    }


MESSAGE_BUILDERS = {WebhookKind.SLACK: slack_message, WebhookKind.TEAMS: teams_message}
