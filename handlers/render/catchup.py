"""Block Kit for the private catch-up. Team text goes through `escape_team_text`; model output and posts
from the internet through `escape_mrkdwn` (they can never ping, link or format)."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block, DividerBlock

from bot.assistant.catchup import CatchUp, Listed
from bot.assistant.summary import Summary, since_phrase
from bot.infra.mrkdwn import escape_mrkdwn, escape_team_text, truncate
from handlers.render.common import context, section, slack_date

ITEM_MAX = 300


def _cites(entries: Sequence[int]) -> str:
    return "(" + ", ".join(f"#{entry}" for entry in entries) + ")"


def _more(shown: int, total: int) -> str:
    return f"\n_…and {total - shown} more_" if total > shown else ""


def _team(text: str) -> str:
    return escape_team_text(truncate(" ".join(text.split()), ITEM_MAX))


def _noted(title: str, part: Listed, empty: str) -> str:
    if not part.items:
        return f"*{title}*\n{empty}"
    lines = [
        f"• {':new: ' if item.new else ''}{_team(item.text)} — <@{item.by}>" for item in part.items
    ]
    return f"*{title}*\n" + "\n".join(lines) + _more(len(part.items), part.total)


def summary_label(summary: Summary) -> str:
    """Says where the summary came from: the model (points cite entries) or the record alone (and why)."""
    if summary.source == "llm":
        dropped = (f" {summary.dropped} point(s) that cited no entry it was shown were dropped."
                   if summary.dropped else "")
        return (f":robot_face: Summarised by {escape_mrkdwn(summary.model or 'the language model')} from the "
                f"timeline; each point cites the entries (#id) it rests on. Check before acting.{dropped}")
    reason = escape_mrkdwn(summary.fallback_reason or "no language model is configured")
    return f":memo: Deterministic summary from the record (no model summary: {reason})."


def catchup_text(catchup: CatchUp) -> str:
    """The notification text (escaped like the blocks)."""
    return f"Catch-up on {escape_team_text(catchup.title)} since {since_phrase(catchup)}"


def catchup_blocks(catchup: CatchUp, summary: Summary) -> list[Block]:
    """The catch-up, one section per part, every list bounded."""
    situation = escape_mrkdwn(summary.situation) if summary.source == "llm" else escape_team_text(summary.situation)
    blocks: list[Block] = [
        section(f":mag: *Catch-up: {escape_team_text(catchup.title)}*\n"
                f"Since {since_phrase(catchup)} ({slack_date(catchup.since)})."),
        section(situation),
    ]
    if summary.points:
        escape = escape_mrkdwn if summary.source == "llm" else escape_team_text
        blocks.append(section("*Key points*\n" + "\n".join(
            f"• {escape(point.text)} {_cites(point.entries)}" for point in summary.points)))
    blocks.append(context(summary_label(summary)))
    blocks.append(DividerBlock())

    severity = f"*Severity:* {catchup.severity} ({escape_team_text(catchup.severity_label)})"
    if catchup.severity_changes:
        severity += "\n" + "\n".join(
            f"• {step.old} → {step.new} by <@{step.by}> {slack_date(step.at)} {_cites([step.entry_id])}"
            for step in catchup.severity_changes
        )
    else:
        severity += f" — unchanged since {since_phrase(catchup)}."
    blocks.append(section(severity))
    blocks.append(section(_noted("Confirmed facts", catchup.facts, "None recorded yet.")))
    blocks.append(section(_noted("Key messages", catchup.key_messages, "None recorded yet.")))
    blocks.append(section(_noted("Decisions since then", catchup.decisions, "None.")))

    drafts = "\n".join(
        f"• #{draft.id} {escape_mrkdwn(draft.platform)} — requested by <@{draft.requested_by}>: "
        f"{escape_mrkdwn(truncate(' '.join(draft.request.split()), ITEM_MAX))}"
        for draft in catchup.pending_drafts
    )
    blocks.append(section("*Drafts waiting for approval*\n" + (drafts or "None.")
                          + _more(len(catchup.pending_drafts), catchup.pending_total)))
    rumours = "\n".join(
        f"• {_team(rumour.claim)} — tracked by <@{rumour.created_by}>" for rumour in catchup.open_rumours
    )
    blocks.append(section("*Open rumours*\n" + (rumours or "None.")
                          + _more(len(catchup.open_rumours), catchup.rumours_total)))

    task_lines = "\n".join(
        f"• #{task.id} {_team(task.text)} — "
        + (f"<@{task.owner}>" if task.owner else "nobody yet")
        + (f", *overdue* since {slack_date(task.due_at)}" if task.overdue and task.due_at
           else f", due {slack_date(task.due_at)}" if task.due_at else "")
        for task in catchup.open_tasks
    )
    blocks.append(section("*Open tasks*\n" + (task_lines or "None.")
                          + _more(len(catchup.open_tasks), catchup.tasks_total)))

    chatter = catchup.chatter
    said = f"*What is being said* — {chatter.volume} mention(s) since then"
    if chatter.volume:
        split = ", ".join(f"{count} {label}" for label, count in chatter.sentiment.items())
        said += f" ({round(chatter.negative_share * 100)}% negative: {split})"
        said += "\n" + "\n".join(
            f"• _{escape_mrkdwn(post.platform)}_ {escape_mrkdwn(truncate(post.author or 'someone', 60))}: "
            f"{escape_mrkdwn(truncate(' '.join(post.text.split()), ITEM_MAX))}"
            for post in chatter.samples
        )
    if catchup.narratives:
        said += "\n*Narratives now*\n" + "\n".join(f"• {escape_mrkdwn(line.text())}" for line in catchup.narratives)
    blocks.append(section(said))
    return blocks
