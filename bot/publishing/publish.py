"""Publishing an approved draft: who may, the intent recorded before the call, and the outcome.

Exactly once, whatever happens:
- The intent is a `publications` row, unique per draft, written (with the Mastodon `Idempotency-Key` or the
  Bluesky record key) and committed *before* the platform is called. Of any number of concurrent clicks,
  one inserts it (or moves a failed one back to `publishing` by compare-and-set); the rest are told it is
  under way or done.
- Every attempt after the first begins by looking the post up, so a call that timed out, or a worker that
  died mid-call, is resolved from what the platform holds before anything is sent again.
- A refusal is recorded with the platform's reason; `retryable` says whether *Retry* can help.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.crisis import timeline
from bot.crisis.plan import Publishing
from bot.drafting.drafts import DECIDERS, DraftView, get_draft, role_holders
from bot.publishing.accounts import Account, account_for
from bot.publishing.bluesky import new_tid
from bot.publishing.platform import Answered, Posted
from models import Mention, Publication, rows_changed
from models.drafts import APPROVED
from models.publications import FAILED, PUBLISHED, PUBLISHING

DRAFT_PUBLISHED = "draft.published"
PUBLISH_FAILED = "draft.publish_failed"
# A `publishing` row whose worker has not finished within this long is taken over (after a look-up).
STALE_CLAIM = timedelta(minutes=2)

PublishRefusal = Literal[
    "not_found", "not_allowed", "not_approved", "no_account", "over_limit", "published", "in_progress",
    "not_retryable",
]


@dataclass(frozen=True)
class PublicationView:
    id: int
    draft_id: int
    platform: str
    account: str
    status: str
    url: str | None
    error: str | None
    retryable: bool
    retry_after: datetime | None
    attempts: int
    requested_by: str
    published_at: datetime | None


def _view(row: Publication) -> PublicationView:
    return PublicationView(row.id, row.draft_id, row.platform, row.account, row.status, row.url, row.error,
                           row.retryable, row.retry_after, row.attempts, row.requested_by, row.published_at)


def publication_of(session: Session, draft_id: int) -> PublicationView | None:
    row = session.scalars(select(Publication).where(Publication.draft_id == draft_id)
                          .execution_options(populate_existing=True)).first()
    return _view(row) if row else None


@dataclass(frozen=True)
class PublishPanel:
    """What an approved draft's message shows about publishing: a button, progress, a link or a refusal."""

    account: str
    publication: PublicationView | None
    over_limit: bool


def publish_panel(session: Session, publishing: Publishing, draft: DraftView) -> PublishPanel | None:
    """None when the draft is not approved or its platform has no account (nothing to show)."""
    account = account_for(publishing, draft.platform.key)
    if draft.status != APPROVED or account is None:
        return None
    text = draft.final_text or ""
    return PublishPanel(account.label, publication_of(session, draft.id), len(text) > draft.platform.limit)


@dataclass(frozen=True)
class Claim:
    """The outcome of a click: the right to make the call (`job`), or why not (`refusal`)."""

    draft: DraftView | None
    refusal: PublishRefusal | None = None
    publication: PublicationView | None = None
    job: PublishJob | None = None


@dataclass(frozen=True)
class PublishJob:
    """One attempt at the platform, as claimed: everything the call needs, nothing secret."""

    publication_id: int
    draft_id: int
    incident_id: int
    account: Account
    text: str
    answered: Answered | None
    key: str
    look_up_first: bool
    since: datetime


def _answered(session: Session, draft: DraftView) -> Answered | None:
    """The post the draft answers, when it came from the same platform (else the draft is a new post)."""
    if draft.mention_id is None:
        return None
    mention = session.get(Mention, draft.mention_id)
    if mention is None or mention.platform != draft.platform.key:
        return None
    return Answered(mention.platform, mention.external_id, mention.url)


def claim_publication(
    session: Session, publishing: Publishing, draft_id: int, user_id: str, now: datetime
) -> Claim:
    """Check the click and record the intent (or take over a failed/stalled one) in this transaction."""
    draft = get_draft(session, draft_id)
    if draft is None:
        return Claim(None, "not_found")
    if user_id not in role_holders(session, draft.incident_id, DECIDERS):
        return Claim(draft, "not_allowed")
    if draft.status != APPROVED or draft.final_text is None:
        return Claim(draft, "not_approved")
    account = account_for(publishing, draft.platform.key)
    if account is None:
        return Claim(draft, "no_account")
    if len(draft.final_text) > draft.platform.limit:
        return Claim(draft, "over_limit")
    existing = session.scalars(select(Publication).where(Publication.draft_id == draft_id)).first()
    if existing is None:
        key = new_tid(now) if account.platform == "bluesky" else f"warroom-{draft_id}-{secrets.token_hex(8)}"
        row = Publication(draft_id=draft_id, incident_id=draft.incident_id, platform=account.platform,
                          account=account.label, text=draft.final_text, reply_to=None, idempotency_key=key,
                          status=PUBLISHING, attempts=1, retryable=False, requested_by=user_id, requested_at=now,
                          claimed_at=now)
        answered = _answered(session, draft)
        row.reply_to = (answered.url or answered.external_id)[:2000] if answered else None
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:  # a concurrent click recorded it first
            existing = session.scalars(select(Publication).where(Publication.draft_id == draft_id)
                                       .execution_options(populate_existing=True)).one()
        else:
            return Claim(draft, publication=_view(row), job=_job(row, draft, account, answered, False))
    return _take_over(session, draft, account, existing, now)


def _take_over(session: Session, draft: DraftView, account: Account, row: Publication, now: datetime) -> Claim:
    view = _view(row)
    if row.status == PUBLISHED:
        return Claim(draft, "published", view)
    if row.status == PUBLISHING and (row.claimed_at is None or now - row.claimed_at < STALE_CLAIM):
        return Claim(draft, "in_progress", view)
    if row.status == FAILED and not row.retryable:
        return Claim(draft, "not_retryable", view)
    return _cas(session, draft, account, row, now)  # *Retry* (or *Publish* again) after a failure, or a stall


def _cas(session: Session, draft: DraftView, account: Account, row: Publication, now: datetime) -> Claim:
    """Move a failed (or stalled) attempt back to `publishing`, once: the attempt count is the guard."""
    changed = rows_changed(session, update(Publication).where(
        Publication.id == row.id, Publication.status == row.status, Publication.attempts == row.attempts,
    ).values(status=PUBLISHING, attempts=row.attempts + 1, claimed_at=now, error=None, retryable=False,
             retry_after=None))
    fresh = session.get(Publication, row.id, populate_existing=True)
    assert fresh is not None
    if changed != 1:
        return Claim(draft, "published" if fresh.status == PUBLISHED else "in_progress", _view(fresh))
    return Claim(draft, publication=_view(fresh),
                 job=_job(fresh, draft, account, _answered(session, draft), look_up_first=True))


def _job(row: Publication, draft: DraftView, account: Account, answered: Answered | None,
         look_up_first: bool) -> PublishJob:
    return PublishJob(row.id, draft.id, draft.incident_id, account, row.text, answered, row.idempotency_key,
                      look_up_first, row.requested_at)


def record_published(session: Session, job: PublishJob, posted: Posted, user_id: str, now: datetime) -> bool:
    """The post exists: link it, and put it on the timeline (once: compare-and-set from `publishing`)."""
    changed = rows_changed(session, update(Publication).where(
        Publication.id == job.publication_id, Publication.status == PUBLISHING,
    ).values(status=PUBLISHED, external_id=posted.external_id[:300], url=posted.url[:2000], published_at=now,
             error=None, retryable=False))
    if changed == 1:
        what = "reply" if job.answered else "post"
        timeline.record_event(
            session, job.incident_id, DRAFT_PUBLISHED, f"Published the approved {what} as {job.account.label}: "
            f"{posted.url}", actor=user_id, at=now,
            data={"draft_id": job.draft_id, "url": posted.url, "platform": job.account.platform,
                  "external_id": posted.external_id})
    return changed == 1


def record_refused(session: Session, job: PublishJob, reason: str, retryable: bool, retry_after: datetime | None,
                   user_id: str, now: datetime) -> None:
    """The platform said no (or did not answer and holds no such post): keep its reason for the message."""
    changed = rows_changed(session, update(Publication).where(
        Publication.id == job.publication_id, Publication.status == PUBLISHING,
    ).values(status=FAILED, error=reason[:2000], retryable=retryable, retry_after=retry_after))
    if changed == 1:
        timeline.record_event(session, job.incident_id, PUBLISH_FAILED,
                              f"Publishing as {job.account.label} failed: {reason}", actor=user_id, at=now,
                              data={"draft_id": job.draft_id, "retryable": retryable})
