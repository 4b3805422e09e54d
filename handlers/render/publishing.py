"""Block Kit for publishing: the *Publish* button on an approved draft, progress, the link, a refusal with
*Retry*, and the private answers to a click that did nothing."""

from __future__ import annotations

import re

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, PlainTextObject

from bot.drafting.drafts import DraftView
from bot.infra.mrkdwn import escape_and_truncate, escape_mrkdwn
from bot.publishing.publish import Claim, PublishPanel
from handlers.render.common import section, slack_date
from models.publications import FAILED, PUBLISHED, PUBLISHING

PUBLISH, RETRY_PUBLISH = "draft_publish", "draft_publish_retry"
_SAFE_URL = re.compile(r"^https?://[^\s<>|]+$")


def _link(url: str | None, label: str) -> str:
    if url and _SAFE_URL.match(url) and len(url) < 1500:
        return f"<{url.replace('&', '&amp;')}|{label}>"
    return escape_and_truncate(url or "", 300)


def publish_blocks(draft: DraftView, panel: PublishPanel) -> list[Block]:
    """What the approved draft shows below its text: the button, progress, the link or the refusal."""
    account = escape_mrkdwn(panel.account)
    shown = panel.publication
    if shown is None:
        if panel.over_limit:
            return [section(f":no_entry: Over the {draft.platform.name} limit, so it cannot be published as "
                            f"{account}.")]
        return [ActionsBlock(block_id=f"draft_publish_{draft.id}", elements=[ButtonElement(
            text=PlainTextObject(text=f"Publish as {panel.account}"[:75]), action_id=PUBLISH, value=str(draft.id),
            style="primary")])]
    if shown.status == PUBLISHED:
        return [section(f":globe_with_meridians: *Published* as {account} by <@{shown.requested_by}> "
                        f"{slack_date(shown.published_at)}: {_link(shown.url, 'view the post')}")]
    if shown.status == PUBLISHING:
        return [section(f":hourglass_flowing_sand: Publishing as {account}…")]
    assert shown.status == FAILED
    reason = escape_and_truncate(shown.error or "unknown", 800)
    when = f" Try again after {slack_date(shown.retry_after)}." if shown.retry_after else ""
    blocks: list[Block] = [section(f":warning: *Not published* as {account}: {reason}.{when}")]
    if shown.retryable:
        blocks.append(ActionsBlock(block_id=f"draft_publish_retry_{draft.id}", elements=[ButtonElement(
            text=PlainTextObject(text="Retry publishing"), action_id=RETRY_PUBLISH, value=str(draft.id))]))
    return blocks


def publish_refusal_text(claim: Claim) -> str:
    """Why a *Publish* click did nothing, for the clicker alone."""
    draft, shown = claim.draft, claim.publication
    if draft is None or claim.refusal == "not_found":
        return "That draft no longer exists."
    if claim.refusal == "not_allowed":
        return (f"Only the incident's approver or lead may publish draft #{draft.id}, and you don't hold that "
                "role here. Nothing was posted.")
    if claim.refusal == "not_approved":
        return f"Draft #{draft.id} is not approved, so it cannot be published. Nothing was posted."
    if claim.refusal == "no_account":
        return f"The plan names no {draft.platform.name} account to publish as. Nothing was posted."
    if claim.refusal == "over_limit":
        return (f"Draft #{draft.id} is over the {draft.platform.name} limit ({draft.platform.limit}), so it "
                "cannot be published. Nothing was posted.")
    if claim.refusal == "published" and shown is not None:
        return (f"Draft #{draft.id} was already published by <@{shown.requested_by}>: "
                f"{_link(shown.url, 'view the post')}. Nothing was posted again.")
    if claim.refusal == "not_retryable" and shown is not None:
        return (f"Draft #{draft.id} cannot be published: {escape_and_truncate(shown.error or '', 500)}. "
                "Retrying would not help.")
    return f"Draft #{draft.id} is being published right now; the message will show the link. Nothing more was posted."
