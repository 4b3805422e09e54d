"""Block Kit for drafts: the drafting placeholder, the draft with its buttons, outcomes, failures, modals."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.drafting.drafts import DraftOutcome, DraftView
from bot.drafting.updates import note_of
from bot.infra.mrkdwn import escape_and_truncate, escape_mrkdwn, escape_team_text, truncate
from handlers.render.common import SECTION_LIMIT, context, section, slack_date
from models.drafts import APPROVED, FAILED, PENDING, REJECTED, REQUESTED, SUPERSEDED

# Action ids: the draft message's buttons (value = draft_ref: the draft and the revision the message shows);
# the digest's *Draft reply* (value = mention id).
DRAFT_REPLY = "draft_reply"
APPROVE, EDIT, REGENERATE, REJECT, RETRY = (
    "draft_approve", "draft_edit", "draft_regenerate", "draft_reject", "draft_retry",
)
# Modal callback ids, and their input block/action ids.
EDIT_VIEW, REJECT_VIEW = "draft_edit_view", "draft_reject_view"
EDIT_INPUT, REASON_INPUT = "text", "reason"
TEXT_INPUT_MAX = 3000
QUOTE_LIMIT = 600
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")
STRATEGY_LABELS = {
    "acknowledge": "Acknowledge", "apologise": "Apologise", "correct": "Correct", "inform": "Inform",
}


def draft_ref(draft_id: int, revision: int) -> str:
    """What a draft's buttons and modals carry: the draft and the revision shown, e.g. "12:3"."""
    return f"{draft_id}:{revision}"


def parse_draft_ref(value: str) -> tuple[int, int | None] | None:
    """(draft id, revision) from a draft_ref; the revision is None for a bare id (a message rendered before
    revisions were carried: any decision from it is refused and the message refreshed). None if unreadable."""
    head, colon, tail = value.strip().partition(":")
    try:
        return int(head), (int(tail) if colon else None)
    except ValueError:
        return None


def _quote(text: str, limit: int = QUOTE_LIMIT) -> str:
    escaped = escape_and_truncate(" ".join(text.split()) if len(text) > limit else text, limit)
    return "\n".join(f">{line}" for line in escaped.splitlines() or [""])


def _link(url: str | None) -> str:
    if not url:
        return ""
    if _SAFE_URL.match(url) and len(url) < 1500:
        return f" (<{url.replace('&', '&amp;')}|original post>)"
    return f" ({escape_and_truncate(url, 200)})"


def _replying_to(draft: DraftView) -> SectionBlock:
    """The post being answered (untrusted, so escaped and quoted); for a stakeholder update, its note."""
    if draft.is_update:
        note = note_of(draft.request)
        noting = f", noting:\n{_quote(note)}" if note else "."
        return section(f"*Internal update* for the stakeholder channel{noting}")
    return section(f"*Replying to*{_link(draft.reply_to_url)}:\n{_quote(draft.request)}")


def _title(draft: DraftView) -> str:
    return ":mega: *Stakeholder update*" if draft.is_update else ":memo: *Draft reply*"


def _text_sections(text: str) -> list[Block]:
    """The reply itself, escaped, split over sections so a long one still fits Slack's 3,000 limit."""
    escaped = escape_mrkdwn(text)
    chunks: list[Block] = []
    while escaped and len(chunks) < 5:
        cut = escaped[: SECTION_LIMIT - 100]
        amp = cut.rfind("&")
        if len(escaped) > len(cut) and amp != -1 and ";" not in cut[amp:]:
            cut = cut[:amp]  # never split an &amp; entity
        chunks.append(section(cut))
        escaped = escaped[len(cut) :]
    return chunks or [section("_(empty)_")]


def length_label(draft: DraftView) -> str:
    """E.g. "212/280", flagged when over the platform's limit."""
    label = f"{draft.length}/{draft.platform.limit}"
    return f":warning: *{label} — over the limit*" if draft.over_limit else f"`{label}`"


def _header(draft: DraftView, title: str) -> SectionBlock:
    if draft.is_update:
        return section(f"{_title(draft)} · {length_label(draft)}")
    return section(f"{title} · {draft.platform.name} · {length_label(draft)}")


def strategy_line(draft: DraftView) -> str:
    """The strategy chosen and why, in one line: the recommended one's reason, or that another was chosen."""
    strategy = STRATEGY_LABELS.get(draft.strategy or "", escape_mrkdwn(draft.strategy or "—"))
    advice = draft.advice
    if draft.is_update or advice is None:
        return f"*Strategy:* {strategy}"
    why = escape_and_truncate(advice.why, 300)
    if advice.strategy == draft.strategy:
        return f"*Strategy:* {strategy} — {why}"
    recommended = STRATEGY_LABELS.get(advice.strategy, escape_mrkdwn(advice.strategy))
    return f"*Strategy:* {strategy} — chosen over the recommended {recommended} ({why}); see why below"


def _legal_flag(draft: DraftView) -> list[Block]:
    """The legal guard: never_say words no recorded fact uses. Approval is refused until an edit removes them."""
    if not draft.legal:
        return []
    words = ", ".join(f"“{escape_mrkdwn(word)}”" for word in draft.legal)
    return [section(f":no_entry: *Legal guard:* this text says {words}, which the plan says never to say unless "
                    "a recorded fact does. It cannot be approved until it is edited.")]


def _details(draft: DraftView) -> list[Block]:
    blocks: list[Block] = []
    lines = [strategy_line(draft)]
    if draft.rationale:
        lines.append(f"*Why:* {escape_and_truncate(draft.rationale, 800)}")
    if draft.concerns:
        shown = [f"• {escape_and_truncate(concern, 300)}" for concern in draft.concerns[:8]]
        lines.append("*Concerns for the approver:*\n" + "\n".join(shown))
    blocks.append(section(truncate("\n".join(lines), SECTION_LIMIT)))
    return blocks


def _footer(draft: DraftView) -> ContextBlock:
    parts = [f"Draft #{draft.id}"]
    if draft.revision:
        parts.append(f"revision {draft.revision}")
    parts.append(f"requested by <@{draft.requested_by}>")
    if draft.source == "template":
        parts.append("template (no LLM configured)")
    elif draft.model:
        parts.append(f"model {escape_mrkdwn(draft.model)}")
    if draft.edited_by:
        editors = ", ".join(f"<@{user}>" for user in dict.fromkeys(draft.edited_by))
        parts.append(f"edited by {editors}")
    return context(" · ".join(parts))


def _template_notice(draft: DraftView) -> list[Block]:
    if draft.source != "template":
        return []
    if draft.is_update:
        return [section(":memo: *Template update* — no LLM is configured, so this was built from the recorded "
                        "facts, decisions and key messages. Check it reads right before approving.")]
    return [section(":memo: *Template draft* — no LLM is configured, so this is the plan's holding statement "
                    "with the confirmed facts. Check it answers the post before approving.")]


def _button(text: str, action_id: str, draft: DraftView, style: str | None = None) -> ButtonElement:
    return ButtonElement(text=PlainTextObject(text=text), action_id=action_id,
                         value=draft_ref(draft.id, draft.revision), style=style)


def render_draft(draft: DraftView, publishing: list[Block] | None = None) -> tuple[str, list[Block]]:
    """The draft's channel message (fallback text, blocks) for its current status; `publishing` is what an
    approved draft shows about publishing (handlers/render/publishing.py)."""
    if draft.status == REQUESTED:
        return drafting_message(draft)
    if draft.status == FAILED:
        return failed_message(draft)
    if draft.status == PENDING:
        return pending_message(draft)
    return decided_message(draft, publishing or [])


def drafting_message(draft: DraftView) -> tuple[str, list[Block]]:
    """The placeholder shown while the LLM works."""
    retry = f" (attempt {draft.attempts + 1})" if draft.attempts else ""
    what = "a stakeholder update" if draft.is_update else f"a reply for {draft.platform.name}"
    text = f"Drafting {what}…{retry}"
    return text, [section(f":hourglass_flowing_sand: *{text}*"), _replying_to(draft), _footer(draft)]


def pending_message(draft: DraftView) -> tuple[str, list[Block]]:
    """The draft awaiting a decision, with Approve / Edit / Regenerate / Reject."""
    blocks: list[Block] = [
        _header(draft, ":memo: *Draft reply*"),
        _replying_to(draft),
        DividerBlock(),
        *_template_notice(draft),
        *_text_sections(draft.text or ""),
        *_details(draft),
        *_legal_flag(draft),
        ActionsBlock(
            block_id=f"draft_actions_{draft.id}",
            elements=[
                _button("Approve", APPROVE, draft, "primary"),
                _button("Edit", EDIT, draft),
                _button("Regenerate", REGENERATE, draft),
                _button("Reject", REJECT, draft, "danger"),
            ],
        ),
        _footer(draft),
    ]
    fallback = f"Draft reply for {draft.platform.name} to approve ({draft.length}/{draft.platform.limit})"
    return fallback, blocks


def decided_message(draft: DraftView, publishing: list[Block] | None = None) -> tuple[str, list[Block]]:
    """An approved, rejected or superseded draft: the outcome, who and when, and no buttons."""
    if draft.status == APPROVED:
        outcome = f":white_check_mark: *Approved* by <@{draft.decided_by}> {slack_date(draft.decided_at)}"
        fallback = f"Draft reply approved by <@{draft.decided_by}>"
        body = draft.final_text or draft.text or ""
    elif draft.status == REJECTED:
        reason = escape_team_text(truncate(draft.reason or "", 1500))
        outcome = (f":x: *Rejected* by <@{draft.decided_by}> {slack_date(draft.decided_at)}\n"
                   f"*Reason:* {reason}")
        fallback = f"Draft reply rejected by <@{draft.decided_by}>"
        body = draft.text or ""
    elif draft.status == SUPERSEDED:
        outcome = ":recycle: *Superseded* — regenerated; the new draft is below."
        fallback = "Draft reply superseded by a new draft"
        body = draft.text or ""
    else:
        outcome = f"*{escape_mrkdwn(draft.status)}*"
        fallback = f"Draft reply {draft.status}"
        body = draft.text or ""
    blocks: list[Block] = [
        _header(draft, ":memo: *Draft reply*"),
        section(outcome),
        _replying_to(draft),
        DividerBlock(),
        *_text_sections(body),
        *(publishing or []),
        _footer(draft),
    ]
    return fallback, blocks


def failed_message(draft: DraftView) -> tuple[str, list[Block]]:
    """A failed attempt: the reason and a *Retry* button; the request is kept."""
    reason = escape_and_truncate(draft.error or "unknown error", 1000)
    attempts = f"{draft.attempts} attempt{'s' if draft.attempts != 1 else ''}"
    blocks: list[Block] = [
        section(f":warning: *Drafting failed* for {draft.platform.name}: {reason}\n"
                f"The request is kept ({attempts} so far); *Retry* drafts it again."),
        _replying_to(draft),
        ActionsBlock(block_id=f"draft_retry_{draft.id}",
                     elements=[_button("Retry", RETRY, draft, "primary")]),
        _footer(draft),
    ]
    return f"Drafting failed: {reason}", blocks  # the fallback is mrkdwn too: the same escaped reason


# ----------------------------------------------------------------------------------- answers to one person


def _either(names: tuple[str, ...] | list[str]) -> str:
    """"a", "a or b", "a, b or c"."""
    return " or ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def refusal_text(outcome: DraftOutcome, verb: str) -> str:
    """Why a click changed nothing, for the person who clicked (ephemeral)."""
    draft = outcome.draft
    if outcome.refusal == "not_found" or draft is None:
        return "That draft no longer exists."
    if outcome.refusal == "not_allowed":
        roles = f"the incident's {_either(outcome.allowed)}" if outcome.allowed else "the right role"
        who = f"whoever asked for it and {roles}" if outcome.requester_may else roles
        return (f"Only {who} may {verb} draft #{draft.id}, and you don't hold that role here. "
                "Nothing was changed.")
    if outcome.refusal == "stale":
        return (f"Draft #{draft.id} changed since you saw it — review revision {draft.revision} (the message "
                f"now shows it) and {verb} it again if you still mean to. Nothing was changed.")
    if outcome.refusal == "four_eyes":
        others = _either([f"<@{user}>" for user in outcome.others])
        return (f"This plan asks for four eyes: whoever requested draft #{draft.id} or wrote its current text "
                f"(you) cannot {verb} it while someone else can — ask {others}. Nothing was changed.")
    if outcome.refusal == "never_say":
        words = ", ".join(f"“{escape_mrkdwn(word)}”" for word in draft.legal)
        return (f"Draft #{draft.id} says {words}, which the plan says never to say unless a recorded fact does: "
                "edit it first (or record the fact, then edit). Nothing was approved.")
    if outcome.refusal == "not_failed":
        return ("That draft is not waiting for a retry (it is already being drafted again, or it succeeded). "
                "Nothing was changed.")
    if outcome.refusal == "already_decided":
        what = "approved" if draft.status == APPROVED else "rejected"
        return (f"Draft #{draft.id} was already {what} by <@{draft.decided_by}> "
                f"{slack_date(draft.decided_at)}. Your click changed nothing.")
    if outcome.refusal == "superseded":
        return f"Draft #{draft.id} was replaced by a newer draft (#{draft.superseded_by}); use that one."
    return f"Draft #{draft.id} is not ready for that yet (it is {draft.status}). Nothing was changed."


def already_drafting_text(draft: DraftView, link: str | None) -> str:
    """For someone who asked for the same draft again within seconds: no second draft, here is the first."""
    where = f"see <{link}|draft #{draft.id}>" if link and _SAFE_URL.match(link) else (
        f"draft #{draft.id} will appear in this channel in a moment")
    return f"Already drafting this — {where}. No second draft was started."


def notice(text: str) -> tuple[str, list[Block]]:
    """A one-line ephemeral notice with its blocks."""
    return text, [section(f":information_source: {text}")]


def notice_with_typed(text: str, typed: str) -> tuple[str, list[Block]]:
    """A notice for a form that could not be saved, with what was typed in it, so nothing is lost."""
    shown, blocks = notice(text)
    return shown, [*blocks, context("What you typed (not saved):"), *_text_sections(typed)]


# ----------------------------------------------------------------------------------- modals


def _draft_form(draft: DraftView, callback_id: str, title: str, submit: str, blocks: list[Block]) -> View:
    """A modal about one revision of a draft: its save knows which draft, and which revision was shown."""
    return View(
        type="modal",
        callback_id=callback_id,
        private_metadata=draft_ref(draft.id, draft.revision),
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        blocks=blocks,
    )


def edit_modal(draft: DraftView) -> View:
    """The *Edit* modal with the draft's current text."""
    return _draft_form(draft, EDIT_VIEW, "Edit draft", "Save", [
        section(f"*Replying to:*\n{_quote(draft.request, 400)}"),
        InputBlock(
            block_id=EDIT_INPUT,
            label=PlainTextObject(text=f"Reply for {draft.platform.name} (limit {draft.platform.limit})"),
            element=PlainTextInputElement(
                action_id=EDIT_INPUT,
                multiline=True,
                initial_value=(draft.text or "")[:TEXT_INPUT_MAX],
                max_length=TEXT_INPUT_MAX,
            ),
        ),
        ContextBlock(elements=[MarkdownTextObject(
            text="Saving keeps the previous text as a revision and updates the draft in the channel."
        )]),
    ])


def reject_modal(draft: DraftView) -> View:
    """The *Reject* modal: a reason is required."""
    return _draft_form(draft, REJECT_VIEW, "Reject draft", "Reject", [
        section(f"*Draft #{draft.id}* for {draft.platform.name}:\n{_quote(draft.text or '', 800)}"),
        InputBlock(
            block_id=REASON_INPUT,
            label=PlainTextObject(text="Why is it rejected?"),
            element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True, max_length=2000),
            optional=False,
        ),
    ])
