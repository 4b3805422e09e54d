"""The story of a *Publish* click, after the ack: claim, (look up,) post, record.

1. Check the clicker and the draft, and record the intent (committed before any call).
2. On any attempt after the first, look the post up first: found means published, nothing is sent.
3. Post through the platform's own library. An answer is recorded; a refusal is recorded with its reason;
   no answer (timeout, dropped connection, 5xx) is resolved by looking the post up: there means published,
   not there means failed with *Retry*, and the retry looks up again before it posts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.crisis.plan import Publishing
from bot.infra import clock
from bot.publishing.accounts import Account
from bot.publishing.bluesky import BlueskyPublisher
from bot.publishing.mastodon import MastodonPublisher
from bot.publishing.platform import Publisher, Refused, Unanswered
from bot.publishing.publish import Claim, PublishJob, claim_publication, record_published, record_refused
from models import transaction

log = logging.getLogger(__name__)

PublisherFactory = Callable[[Account, float], Publisher]


def platform_publisher(account: Account, timeout: float) -> Publisher:
    """The account's client, with its secret read from the environment now (Refused when it is not set)."""
    secret = account.secret()
    if secret is None:
        raise Refused(f"${account.env} is not set where War Room runs, so it cannot sign in as {account.label}",
                      retryable=True)
    if account.platform == "mastodon":
        return MastodonPublisher(account, secret, timeout)
    return BlueskyPublisher(account, secret, timeout)


@dataclass(frozen=True)
class PublishResult:
    claim: Claim
    published: bool = False


def publish_draft(
    sessions: sessionmaker[Session], publishing: Publishing, draft_id: int, user_id: str,
    make_publisher: PublisherFactory = platform_publisher,
) -> PublishResult:
    """Publish the approved draft once (see the module's story); the result says what the click did."""
    with transaction(sessions) as session:
        claim = claim_publication(session, publishing, draft_id, user_id, clock.now())
    job = claim.job
    if job is None:
        return PublishResult(claim)
    try:
        publisher = make_publisher(job.account, publishing.timeout_seconds)
        posted = publisher.find(job.text, job.key, job.since) if job.look_up_first else None
        if posted is None:
            try:
                posted = publisher.post(job.text, job.answered, job.key)
            except Unanswered as exc:
                log.warning("publishing draft %s: %s; looking the post up", job.draft_id, exc)
                posted = publisher.find(job.text, job.key, job.since)
                if posted is None:
                    raise Refused(f"{exc}, and {job.account.label} has no such post, so nothing was published",
                                  retryable=True) from None
    except Unanswered as exc:  # the look-up itself went unanswered: leave it to *Retry*, which looks up first
        _refused(sessions, job, Refused(f"{exc}; whether it was posted is checked before any retry",
                                        retryable=True), user_id)
        return PublishResult(claim)
    except Refused as exc:
        _refused(sessions, job, exc, user_id)
        return PublishResult(claim)
    except Exception as exc:  # a library surprise: shown like no answer, and looked up before any retry
        log.exception("publishing draft %s failed unexpectedly", job.draft_id)
        _refused(sessions, job, Refused(f"War Room hit an unexpected {type(exc).__name__} while publishing; "
                                        "whether it was posted is checked before any retry", retryable=True), user_id)
        return PublishResult(claim)
    with transaction(sessions) as session:
        record_published(session, job, posted, user_id, clock.now())
    return PublishResult(claim, published=True)


def _refused(sessions: sessionmaker[Session], job: PublishJob, refusal: Refused, user_id: str) -> None:
    log.info("publishing draft %s refused: %s", job.draft_id, refusal.reason)
    with transaction(sessions) as session:
        record_refused(session, job, refusal.reason, refusal.retryable, refusal.retry_after, user_id, clock.now())
