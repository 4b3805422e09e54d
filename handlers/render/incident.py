"""Block Kit (and channel topic text) for an incident: the brief, the open form, roles, the room's messages,
the status summary and the resolve summary.

Team-typed text shown as mrkdwn goes through `escape_team_text`; plain_text fields (headers, buttons,
options) cannot ping or link, so they are only cut to their limits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.crisis.incidents import DESCRIPTION_MAX, TITLE_MAX, IncidentSnapshot, ResolveSummary
from bot.crisis.plan import SEVERITIES, Plan
from bot.crisis.roles import Assignment, RoleHolders
from bot.crisis.room import Entry, RumourView, StatusSummary
from bot.infra.mrkdwn import escape_team_text, truncate
from handlers.render.common import SECTION_LIMIT, context, section, slack_date
from models.incidents import CONFIRMED, DISMISSED, OPEN, OPENING, REFUTED, RESOLVED

HEADER_LIMIT = 150
BUTTON_TEXT_LIMIT = 75
OPTION_TEXT_LIMIT = 75
MODAL_TITLE_LIMIT = 24
TOPIC_LIMIT = 250
PURPOSE_LIMIT = 250
MAX_ROLE_BLOCKS = 30  # a message holds 50 blocks; the brief's other parts take the rest

OPEN_CALLBACK = "open_incident"
OPEN_ACTION = "open_incident"
CLAIM_ACTION_PREFIX = "claim_role:"
RUMOUR_ACTION_PREFIX = "rumour_"
FOLLOWUP_FROM_ACTION = "followup_from"  # *Follow-up* on a decision or rumour; value `decision:<id>` / `rumour:<id>`
# Block ids of the open form; each input's action_id is "value".
FORM_TITLE, FORM_SEVERITY, FORM_PLAYBOOK, FORM_DESCRIPTION = "title", "severity", "playbook", "description"
FORM_VALUE = "value"

SEVERITY_EMOJI = {
    "sev1": ":red_circle:",
    "sev2": ":large_orange_circle:",
    "sev3": ":large_yellow_circle:",
    "sev4": ":white_circle:",
}
RUMOUR_OUTCOME_TEXT = {
    REFUTED: ("Refuted", ":white_check_mark:"),
    CONFIRMED: ("Confirmed", ":warning:"),
    DISMISSED: ("Dismissed", ":heavy_minus_sign:"),
}


# ---------------------------------------------------------------------------------------------
# Small pieces
# ---------------------------------------------------------------------------------------------


def team_text(text: str, limit: int = SECTION_LIMIT) -> str:
    """Team-typed text made safe for mrkdwn and cut to `limit` without splitting an escape."""
    escaped = escape_team_text(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut.rstrip() + "…"


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=truncate(" ".join(text.split()) or "-", limit), emoji=True)


def button(text: str, action_id: str, value: str = "", style: str | None = None) -> ButtonElement:
    return ButtonElement(
        text=plain(text, BUTTON_TEXT_LIMIT), action_id=action_id, value=value or None, style=style
    )


def format_duration(delta: timedelta) -> str:
    """`3d 4h`, `2h 05m`, `12m`, `under a minute`."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m" if minutes else "under a minute"


def severity_text(severity: str, label: str) -> str:
    return f"{SEVERITY_EMOJI.get(severity, '')} *{severity.upper()}* {escape_team_text(label)}".strip()


def people(users: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"<@{user}>" for user in users)


# ---------------------------------------------------------------------------------------------
# Channel topic and purpose
# ---------------------------------------------------------------------------------------------


def topic_text(incident: IncidentSnapshot) -> str:
    """`SEV2 Major · Lead: <@U…> · Status: open` (≤ 250 characters)."""
    status = OPEN if incident.status == OPENING else incident.status
    lead = f"<@{incident.lead}>" if incident.lead else "nobody yet"
    text = f"{incident.severity.upper()} {incident.severity_label} · Lead: {lead} · Status: {status}"
    return truncate(escape_team_text(text), TOPIC_LIMIT)


def purpose_text(incident: IncidentSnapshot) -> str:
    """The channel purpose: the title, and the playbook when there is one (≤ 250 characters)."""
    text = incident.title
    if incident.playbook_title:
        text += f" — {incident.playbook_title} playbook"
    return truncate(escape_team_text(text), PURPOSE_LIMIT)


# ---------------------------------------------------------------------------------------------
# The brief
# ---------------------------------------------------------------------------------------------


def brief_text(incident: IncidentSnapshot) -> str:
    """Notification text of the brief."""
    return truncate(f"{incident.severity.upper()} incident: {escape_team_text(incident.title)}", 3000)


def role_line(role: RoleHolders, incident: IncidentSnapshot) -> str:
    """A role and its holders; an empty sign-off role says who fills it (it has no *Claim* button)."""
    who = people(role.holders) if role.holders else "_nobody yet_"
    if not role.holders and role.signoff and incident.status != RESOLVED:
        lead = f" (<@{incident.lead}>)" if incident.lead else ""
        who += f" · sign-off role: the lead{lead} fills it with `/crisis assign`"
    return f"*{escape_team_text(role.title)}* (`{role.role}`): {who}"


def brief_blocks(incident: IncidentSnapshot, digest_minutes: int) -> list[Block]:
    """The pinned brief: title, severity, playbook, roles with *Claim* buttons, what happens next."""
    if incident.status == OPENING:
        incident = replace(incident, status=OPEN)
    blocks: list[Block] = [HeaderBlock(text=plain(f"🚨 {incident.title}", HEADER_LIMIT))]
    facts = [
        f"*Severity:* {severity_text(incident.severity, incident.severity_label)}",
        f"*Status:* {incident.status}",
        f"*Opened:* {slack_date(incident.opened_at)} by <@{incident.opened_by}>",
    ]
    if incident.statement_due_at and incident.status != RESOLVED:
        facts.append(f"*First holding statement due:* {slack_date(incident.statement_due_at)}")
    if incident.status == RESOLVED and incident.resolved_at:
        facts.append(
            f"*Resolved:* {slack_date(incident.resolved_at)}"
            + (f" by <@{incident.resolved_by}>" if incident.resolved_by else "")
        )
    blocks.append(section("\n".join(facts)))
    if incident.description:
        blocks.append(section(team_text(incident.description, SECTION_LIMIT)))
    if incident.playbook_title:
        text = f"*Playbook: {escape_team_text(incident.playbook_title)}*"
        if incident.playbook_description:
            text += "\n" + escape_team_text(incident.playbook_description)
        if incident.checklist:
            text += "\n" + "\n".join(f"☐ {escape_team_text(item)}" for item in incident.checklist)
        blocks.append(section(truncate(text, SECTION_LIMIT)))
    blocks.append(DividerBlock())
    blocks.append(section("*Roles*"))
    for role in incident.roles[:MAX_ROLE_BLOCKS]:
        accessory = None
        if not role.holders and not role.signoff and incident.status != RESOLVED:
            accessory = button(
                f"Claim {role.title}", f"{CLAIM_ACTION_PREFIX}{role.role}", f"{incident.id}:{role.role}"
            )
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=truncate(role_line(role, incident), SECTION_LIMIT)),
                accessory=accessory,
            )
        )
    blocks.append(DividerBlock())
    if incident.status == RESOLVED:
        blocks.append(
            context("This incident is resolved. `/crisis status`, `decide` and `export` still work here.")
        )
    else:
        blocks.append(
            section(
                "*What happens next*\n"
                f"• A digest of what people are saying is posted here every {digest_minutes} minutes.\n"
                "• Claim an empty role above, or `/crisis assign <role> @person` (the lead fills sign-off roles).\n"
                "• Record what is known with `/crisis fact`, agreed wording with `/crisis message`, "
                "rumours with `/crisis rumor`, decisions with `/crisis decide`.\n"
                "• `/crisis draft` asks for a reply draft; an approver signs it off.\n"
                "• `/crisis task` adds a task (the playbook's are posted below), `/crisis tasks` lists them.\n"
                "• The lead closes the incident with `/crisis resolve`."
            )
        )
    return blocks


# ---------------------------------------------------------------------------------------------
# The open form
# ---------------------------------------------------------------------------------------------


def _option(text: str, value: str) -> Option:
    return Option(text=plain(text, OPTION_TEXT_LIMIT), value=value)


def _text_input(block_id: str, label: str, typed: object, max_length: int, *, optional: bool | None = None,
                multiline: bool | None = None, placeholder: str | None = None) -> InputBlock:
    """A free-text field of the open form, prefilled with `typed` (cut to `max_length`)."""
    initial = truncate(str(typed or ""), max_length)
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        optional=optional,
        element=PlainTextInputElement(
            action_id=FORM_VALUE,
            multiline=multiline,
            max_length=max_length,
            initial_value=initial or None,
            placeholder=plain(placeholder, 150) if placeholder else None,
        ),
    )


def _select_input(block_id: str, label: str, options: list[Option], chosen: object, placeholder: str,
                  hint: str | None = None) -> InputBlock:
    """An optional pick-one field of the open form, with `chosen` picked when it is one of the options."""
    return InputBlock(
        block_id=block_id,
        label=plain(label, 2000),
        optional=True,
        hint=plain(hint, 2000) if hint else None,
        element=StaticSelectElement(
            action_id=FORM_VALUE,
            options=options,
            initial_option=next((o for o in options if o.value == chosen), None),
            placeholder=plain(placeholder, 150),
        ),
    )


def open_form(
    plan: Plan, prefill: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None
) -> View:
    """The *Open incident* modal: title, severity, playbook, description; `prefill` sets initial values."""
    prefill = prefill or {}
    severity_options = [
        _option(f"{name.upper()} — {plan.severities[name].label}", name)  # type: ignore[index]
        for name in SEVERITIES
    ]
    blocks: list[Block] = [
        _text_input(FORM_TITLE, "Title", prefill.get("title"), TITLE_MAX,
                    placeholder="What is happening, in a few words"),
        _select_input(FORM_SEVERITY, "Severity", severity_options, prefill.get("severity"), "Choose a severity",
                      hint="Leave empty for the playbook's default (or SEV3)."),
    ]
    if plan.playbooks:
        playbook_options = [_option(book.title, name) for name, book in plan.playbooks.items()][:100]
        blocks.append(_select_input(FORM_PLAYBOOK, "Playbook", playbook_options, prefill.get("playbook"),
                                    "Choose a playbook"))
    blocks.append(_text_input(FORM_DESCRIPTION, "Description", prefill.get("description"), DESCRIPTION_MAX,
                              optional=True, multiline=True))
    return View(
        type="modal",
        callback_id=OPEN_CALLBACK,
        title=plain("Open an incident", MODAL_TITLE_LIMIT),
        submit=plain("Open", MODAL_TITLE_LIMIT),
        close=plain("Cancel", MODAL_TITLE_LIMIT),
        private_metadata=json.dumps(dict(metadata or {}))[:3000],
        blocks=blocks,
    )


def read_open_form(view: Mapping[str, Any]) -> dict[str, str]:
    """The submitted form's values: title, severity, playbook, description ("" when left empty)."""
    values = (view.get("state") or {}).get("values") or {}

    def field(block_id: str) -> str:
        element = (values.get(block_id) or {}).get(FORM_VALUE) or {}
        if element.get("type") == "static_select" or "selected_option" in element:
            option = element.get("selected_option") or {}
            return str(option.get("value") or "")
        return str(element.get("value") or "")

    return {
        name: field(name).strip() for name in (FORM_TITLE, FORM_SEVERITY, FORM_PLAYBOOK, FORM_DESCRIPTION)
    }


def open_button(text: str = "Open incident", prefill: Mapping[str, Any] | None = None) -> ButtonElement:
    """The *Open incident* button; `prefill` (title, severity, playbook) fills the form it opens."""
    value = json.dumps(dict(prefill)) if prefill else ""
    return button(text, OPEN_ACTION, value[:2000], style="primary")


# ---------------------------------------------------------------------------------------------
# Answers about the open
# ---------------------------------------------------------------------------------------------


def opened_blocks(incident: IncidentSnapshot) -> list[Block]:
    return [
        section(
            f":white_check_mark: Incident opened: <#{incident.channel_id}> — "
            f"{team_text(incident.title, 500)} ({incident.severity.upper()})"
        )
    ]


def open_failed_text(title: str, step: str, error: str) -> str:
    return (
        f":x: Opening *{team_text(title, 300)}* stopped at the *{step}* step: {error}. "
        "Run the same `/crisis open` again (same title) to pick up from there; nothing will be duplicated."
    )


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------


def roles_blocks(incident: IncidentSnapshot) -> list[Block]:
    lines = [role_line(role, incident) for role in incident.roles]
    empty = [role.role for role in incident.roles if not role.holders]
    blocks: list[Block] = [section(truncate("*Roles*\n" + "\n".join(lines), SECTION_LIMIT))]
    if empty:
        blocks.append(
            context(
                "Empty: "
                + ", ".join(f"`{r}`" for r in empty)
                + ". Fill one with `/crisis assign <role> @person` or its *Claim* button;"
                " the lead fills sign-off roles."
            )
        )
    return blocks


def assignment_text(assignment: Assignment, actor: str) -> str:
    text = f":bust_in_silhouette: <@{assignment.user_id}> is now *{escape_team_text(assignment.title)}*"
    if assignment.replaced:
        text += f" (taking over from {people(assignment.replaced)})"
    if actor != assignment.user_id:
        text += f", assigned by <@{actor}>"
    return truncate(text + ".", SECTION_LIMIT)


def role_dm_blocks(assignment: Assignment, incident: IncidentSnapshot) -> list[Block]:
    text = (
        f"You are now *{escape_team_text(assignment.title)}* in <#{incident.channel_id}> "
        f"({team_text(incident.title, 300)})."
    )
    if assignment.description:
        text += "\n" + team_text(assignment.description, 2000)
    return [section(text)]


# ---------------------------------------------------------------------------------------------
# The room
# ---------------------------------------------------------------------------------------------


def entry_blocks(kind: str, emoji: str, entry: Entry) -> list[Block]:
    """A fact, key message or decision echoed in the channel."""
    blocks: list[Block] = [
        section(f"{emoji} *{kind}:* {team_text(entry.text, 2800)}"),
        context(f"<@{entry.by}> · {slack_date(entry.at)}"),
    ]
    if kind == "Decision":
        blocks.append(ActionsBlock(block_id=f"decision-{entry.id}",
                                   elements=[button("Follow-up", FOLLOWUP_FROM_ACTION, f"decision:{entry.id}")]))
    return blocks


def entry_text(kind: str, entry: Entry) -> str:
    """Notification text of an echoed fact, key message or decision (mrkdwn too: escaped)."""
    return f"{kind}: {team_text(entry.text, 300)}"


def status_update_text(text: str) -> str:
    return f"Status update: {team_text(text, 300)}"


def status_update_blocks(text: str, incident: IncidentSnapshot, actor: str, at: datetime) -> list[Block]:
    return [
        section(
            f":mega: *Status update* — {severity_text(incident.severity, incident.severity_label)}\n"
            f"{team_text(text, 2700)}"
        ),
        context(f"<@{actor}> · {slack_date(at)} · open for {format_duration(at - incident.opened_at)}"),
    ]


def severity_change_text(old: str, new: str, label: str, actor: str) -> str:
    label = escape_team_text(label)
    return f":rotating_light: Severity changed *{old.upper()}* → *{new.upper()}* {label} by <@{actor}>."


def rumour_blocks(rumour: RumourView) -> list[Block]:
    """A tracked rumour: buttons while it is open, its outcome (and who set it) after."""
    blocks: list[Block] = [section(f":speech_balloon: *Rumour:* {team_text(rumour.claim, 2800)}")]
    if rumour.status in RUMOUR_OUTCOME_TEXT and rumour.decided_by and rumour.decided_at:
        label, emoji = RUMOUR_OUTCOME_TEXT[rumour.status]
        blocks.append(
            context(
                f"{emoji} *{label}* by <@{rumour.decided_by}> · {slack_date(rumour.decided_at)} · "
                f"tracked by <@{rumour.created_by}>"
            )
        )
        blocks.append(ActionsBlock(block_id=f"rumour-{rumour.id}",
                                   elements=[button("Follow-up", FOLLOWUP_FROM_ACTION, f"rumour:{rumour.id}")]))
        return blocks
    blocks.append(context(f"Tracked by <@{rumour.created_by}> · {slack_date(rumour.created_at)}"))
    value = str(rumour.id)
    blocks.append(
        ActionsBlock(
            block_id=f"rumour-{rumour.id}",
            elements=[
                button("Refuted", f"{RUMOUR_ACTION_PREFIX}{REFUTED}", value, style="primary"),
                button("Confirmed", f"{RUMOUR_ACTION_PREFIX}{CONFIRMED}", value, style="danger"),
                button("Dismiss", f"{RUMOUR_ACTION_PREFIX}{DISMISSED}", value),
                button("Follow-up", FOLLOWUP_FROM_ACTION, f"rumour:{rumour.id}"),
            ],
        )
    )
    return blocks


def rumour_text(rumour: RumourView) -> str:
    status = "" if rumour.status not in RUMOUR_OUTCOME_TEXT else f" ({RUMOUR_OUTCOME_TEXT[rumour.status][0]})"
    return truncate(f"Rumour{status}: {escape_team_text(rumour.claim)}", 3000)


def timeline_logged_text(entry: Entry) -> str:
    return f":pushpin: Added to the timeline: <@{entry.by}>'s message from {slack_date(entry.at)}."


# ---------------------------------------------------------------------------------------------
# Status and resolve summaries
# ---------------------------------------------------------------------------------------------


def _listing(title: str, entries: tuple[Entry, ...], limit: int = 10) -> str:
    shown = entries[-limit:]
    lines = [f"• {team_text(e.text, 250)} — <@{e.by}>" for e in shown]
    more = f"\n_…and {len(entries) - len(shown)} earlier_" if len(entries) > len(shown) else ""
    return truncate(f"*{title}* ({len(entries)})\n" + "\n".join(lines) + more, SECTION_LIMIT)


def status_blocks(summary: StatusSummary) -> list[Block]:
    """The ephemeral `/crisis status`."""
    incident = summary.incident
    end = incident.resolved_at or summary.now
    head = [
        f"*{team_text(incident.title, 500)}*",
        f"{severity_text(incident.severity, incident.severity_label)} · {incident.status} · "
        f"open for {format_duration(end - incident.opened_at)}",
    ]
    if incident.open_error:
        head.append(f":warning: Opening stopped: {escape_team_text(incident.open_error)}")
    blocks: list[Block] = [section("\n".join(head))]
    blocks.extend(roles_blocks(incident))
    rumours = [f"• {team_text(r.claim, 250)}" for r in summary.open_rumours[:10]]
    blocks.append(
        section(
            truncate(
                f"*Open rumours* ({len(summary.open_rumours)})\n" + ("\n".join(rumours) or "_none_"),
                SECTION_LIMIT,
            )
        )
    )
    blocks.append(section(_listing("Facts", summary.facts)))
    blocks.append(section(_listing("Key messages", summary.key_messages)))
    blocks.append(section(_listing("Latest decisions", summary.decisions, 5)))
    digest = slack_date(summary.last_digest_at) if summary.last_digest_at else "none yet"
    blocks.append(context(f"Drafts waiting for approval: *{summary.pending_drafts}* · Last digest: {digest}"))
    return blocks


def status_text(summary: StatusSummary) -> str:
    incident = summary.incident
    return truncate(
        f"{incident.severity.upper()} · {incident.status} · {escape_team_text(incident.title)}", 3000
    )


def resolve_blocks(summary: ResolveSummary) -> list[Block]:
    """The summary posted when the incident is resolved."""
    incident = summary.incident
    rumours = sum(summary.rumours.values())
    outcomes = ", ".join(f"{count} {status}" for status, count in sorted(summary.rumours.items()))
    lines = [
        f":white_check_mark: *Resolved:* {team_text(incident.title, 500)}",
        f"*Duration:* {format_duration(summary.duration)} · "
        f"*Severity at close:* {severity_text(incident.severity, incident.severity_label)}",
        f"*Decisions:* {summary.decisions} · *Facts:* {summary.facts} · "
        f"*Key messages:* {summary.key_messages} · "
        f"*Rumours:* {rumours}" + (f" ({outcomes})" if outcomes else ""),
    ]
    blocks: list[Block] = [section("\n".join(lines))]
    roles = [f"*{escape_team_text(r.title)}*: {people(r.holders)}" for r in incident.roles if r.holders]
    if roles:
        blocks.append(section(truncate("*Roles*\n" + "\n".join(roles), SECTION_LIMIT)))
    if incident.summary:
        blocks.append(section(f"*Summary*\n{team_text(incident.summary, 2800)}"))
    by = f" by <@{incident.resolved_by}>" if incident.resolved_by else ""
    when = slack_date(incident.resolved_at) if incident.resolved_at else ""
    blocks.append(context(f"Resolved{by} {when}. Digests have stopped.".replace("  ", " ")))
    return blocks


def resolve_text(summary: ResolveSummary) -> str:
    return truncate(f"Resolved: {escape_team_text(summary.incident.title)}", 3000)
