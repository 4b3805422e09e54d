"""Block Kit for stakeholder updates: the update as posted to stakeholders, the room's notices (posted, not
posted with *Post update*), and the overdue-update reminder with *Draft update*."""

from __future__ import annotations

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, PlainTextObject

from bot.flows.update_messages import StakeholderUpdateMessage, UpdateNotPosted, UpdateOverdue, UpdatePosted
from bot.infra.mrkdwn import escape_mrkdwn
from handlers.render.common import context, section, slack_date
from handlers.render.drafts import _text_sections

# Action ids: the reminder's *Draft update* (starts `/crisis update`), and *Post update* on an approved
# update that could not be posted (value: the draft id).
START_UPDATE, POST_UPDATE = "update_start", "update_post"

UpdateMessage = StakeholderUpdateMessage | UpdatePosted | UpdateNotPosted | UpdateOverdue


def render(message: UpdateMessage) -> tuple[str, list[Block]]:
    """(fallback text, blocks) of one of the update flow's messages."""
    match message:
        case StakeholderUpdateMessage():
            return stakeholder_update(message)
        case UpdatePosted(draft_id=draft_id, channel_id=channel_id, approved_by=approver):
            text = f":mega: Stakeholder update #{draft_id} (approved by <@{approver}>) was posted to <#{channel_id}>."
            return text, [section(text)]
        case UpdateNotPosted():
            return not_posted(message)
        case UpdateOverdue():
            return overdue(message)


def stakeholder_update(message: StakeholderUpdateMessage) -> tuple[str, list[Block]]:
    """The approved text, verbatim (escaped), with the incident and who approved it."""
    title = escape_mrkdwn(message.incident_title)
    blocks: list[Block] = [
        section(f":mega: *Stakeholder update* · {escape_mrkdwn(message.brand)} · {title}"),
        *_text_sections(message.text),
        context(f"Approved by <@{message.approved_by}> in War Room (update #{message.draft_id})"),
    ]
    return f"Stakeholder update: {title}", blocks


def not_posted(message: UpdateNotPosted) -> tuple[str, list[Block]]:
    icon = ":lock:" if message.private else ":warning:"
    text = (f"{icon} Stakeholder update #{message.draft_id} is approved but was *not posted*: "
            f"{escape_mrkdwn(message.reason)}.")
    button = ButtonElement(text=PlainTextObject(text="Post update"), action_id=POST_UPDATE,
                           value=str(message.draft_id), style="primary")
    return text, [section(text), ActionsBlock(block_id=f"update_post_{message.draft_id}", elements=[button])]


def overdue(message: UpdateOverdue) -> tuple[str, list[Block]]:
    leads = " ".join(f"<@{lead}>" for lead in message.leads) or "Lead (no one holds the role)"
    text = (f":alarm_clock: {leads}: a stakeholder update is overdue — the plan asks for one every "
            f"{message.minutes} minutes at this severity, and none has gone out since {slack_date(message.last_at)} "
            f"(due {slack_date(message.due_at)}).")
    button = ButtonElement(text=PlainTextObject(text="Draft update"), action_id=START_UPDATE, value="reminder",
                           style="primary")
    return text, [section(text), ActionsBlock(block_id="update_reminder", elements=[button])]
