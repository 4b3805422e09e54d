"""Drafted replies: requests, results and failures, edits, regeneration, and the approve/reject decision.

Plain values in, plain values out. A decision is a compare-and-set on `drafts.status` (pending → approved
or rejected), so however many clicks arrive, from however many people, exactly one is recorded. Every
change of text bumps `drafts.revision` in the same UPDATE, and each click names the revision it was shown:
approve, reject, edit and regenerate are compared-and-set on (pending, that revision), so nobody signs off,
or overwrites, a text they never saw.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.crisis import timeline
from bot.crisis.plan import Plan
from bot.drafting import strategy as strategies
from bot.drafting.llm import DraftResult
from bot.drafting.prompts import PromptContext
from bot.tasks.tasks import complete_statement_task
from models import (
    Decision,
    Draft,
    DraftRevision,
    Fact,
    Incident,
    KeyMessage,
    Mention,
    RoleAssignment,
    rows_changed,
    transaction,
    utcnow,
)
from models.drafts import APPROVED, FAILED, PENDING, REJECTED, REQUESTED, SUPERSEDED

# ----------------------------------------------------------------------------------- platforms


@dataclass(frozen=True)
class Platform:
    key: str
    name: str
    limit: int
    note: str = ""


# The one table of platforms and the length a reply may have there (characters). Where a platform allows
# far more than a crisis reply should ever need, the limit is what we hold ourselves to, and says so;
# nothing is above 3,000 so a draft always fits one Slack text input for editing.
PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        Platform("x", "X (Twitter)", 280, "post/reply limit for non-Premium accounts"),
        Platform("bluesky", "Bluesky", 300, "post limit"),
        Platform("mastodon", "Mastodon", 500, "default instance limit"),
        Platform("threads", "Threads", 500, "post limit"),
        Platform("tiktok", "TikTok", 150, "comment limit"),
        Platform("instagram", "Instagram", 2200, "caption/comment limit"),
        Platform("facebook", "Facebook", 2200, "Facebook allows more; we keep replies to Instagram's length"),
        Platform("linkedin", "LinkedIn", 3000, "post limit"),
        Platform("email", "Email", 3000, "no hard limit; longer than this is a statement, not a reply"),
    )
}
PLATFORM_ALIASES = {"twitter": "x", "tweet": "x", "bsky": "bluesky", "fb": "facebook", "ig": "instagram",
                    "insta": "instagram", "mail": "email", "e-mail": "email"}
DEFAULT_PLATFORM = "x"
MAX_REQUEST_CHARS = 4000
GENERIC_HOLDING_STATEMENT = (
    "We've seen what people are saying and we're looking into it now. "
    "We'll share an update here as soon as we know more."
)


# Not a public platform: an internal update for the plan's stakeholder_channel, approved like a reply
# (`/crisis update`; bot/drafting/updates.py). Never chosen by `/crisis draft <platform>`.
STAKEHOLDER_UPDATE = Platform("stakeholder", "Stakeholder update", 3000, "internal update, one Slack message")


def platform_of(key: str) -> Platform:
    """The platform a stored draft is for (a reply platform, or the stakeholder update)."""
    if key == STAKEHOLDER_UPDATE.key:
        return STAKEHOLDER_UPDATE
    return platform_for(key) or PLATFORMS[DEFAULT_PLATFORM]


def platform_for(name: str | None) -> Platform | None:
    """The platform called `name` (aliases like `twitter` included), or None when unknown."""
    if not name:
        return None
    key = name.strip().lower().rstrip(":")
    return PLATFORMS.get(PLATFORM_ALIASES.get(key, key))


class DraftInputError(ValueError):
    """`/crisis draft` was given something unusable; the message says what."""


def parse_draft_args(args: str) -> tuple[Platform, str]:
    """Split `[platform] <what to reply to>`; the platform defaults to X."""
    text = args.strip()
    head, _, rest = text.partition(" ")
    platform = platform_for(head)
    if platform is not None:
        text = rest.strip()
    else:
        platform = PLATFORMS[DEFAULT_PLATFORM]
    if not text:
        raise DraftInputError("Say what to reply to: paste the post (or describe it) after `draft`.")
    if len(text) > MAX_REQUEST_CHARS:
        raise DraftInputError(f"That is {len(text):,} characters; paste at most {MAX_REQUEST_CHARS:,}.")
    return platform, text


# ----------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class DraftView:
    """A draft as the renderers see it."""

    id: int
    incident_id: int
    platform: Platform
    request: str
    reply_to_url: str | None
    mention_id: int | None
    requested_by: str
    requested_at: datetime
    status: str
    text: str | None
    strategy: str | None
    rationale: str | None
    concerns: tuple[str, ...]
    model: str | None
    source: str
    error: str | None
    attempts: int
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    final_text: str | None
    superseded_by: int | None
    channel_id: str | None
    slack_ts: str | None
    revision: int = 0
    edited_by: tuple[str, ...] = ()
    # The strategy recommended for this draft and why (crisis type, refuted rumour), in one line.
    advice: strategies.Advice | None = None
    # The plan's never_say words this revision uses that no recorded fact does: approval needs an edit.
    legal: tuple[str, ...] = ()

    @property
    def is_update(self) -> bool:
        return self.platform.key == STAKEHOLDER_UPDATE.key

    @property
    def length(self) -> int:
        return len(self.text or "")

    @property
    def over_limit(self) -> bool:
        return self.length > self.platform.limit


def _view(draft: Draft) -> DraftView:
    concerns = draft.concerns or {}
    advice = concerns.get("advice")
    return DraftView(
        id=draft.id,
        incident_id=draft.incident_id,
        platform=platform_of(draft.platform),
        request=draft.request,
        reply_to_url=draft.reply_to_url,
        mention_id=draft.mention_id,
        requested_by=draft.requested_by,
        requested_at=draft.requested_at,
        status=draft.status,
        text=draft.text,
        strategy=draft.strategy,
        rationale=draft.rationale,
        concerns=tuple(concerns.get("model", [])) + tuple(concerns.get("review", [])),
        model=draft.model,
        source=draft.source,
        error=draft.error,
        attempts=draft.attempts,
        decided_by=draft.decided_by,
        decided_at=draft.decided_at,
        reason=draft.reason,
        final_text=draft.final_text,
        superseded_by=draft.superseded_by,
        channel_id=draft.channel_id,
        slack_ts=draft.slack_ts,
        revision=draft.revision,
        edited_by=tuple(r.author for r in draft.revisions if r.kind == "edit"),
        advice=strategies.Advice(str(advice["strategy"]), str(advice["why"])) if isinstance(advice, dict) else None,
        legal=tuple(concerns.get("legal", [])),
    )


def _load(session: Session, draft_id: int) -> Draft | None:
    # populate_existing: after a compare-and-set, show what the database holds, not a stale identity map.
    return session.get(Draft, draft_id, populate_existing=True)


def get_draft(session: Session, draft_id: int) -> DraftView | None:
    """A draft by id."""
    draft = _load(session, draft_id)
    return _view(draft) if draft else None


# ----------------------------------------------------------------------------------- authority

DECIDERS = ("approver", "lead")
EDITORS = ("drafter", "lead")
# Who may spend another LLM call on a failed draft (besides whoever asked for it).
RETRIERS = ("drafter", "approver", "lead")


def role_holders(session: Session, incident_id: int, roles: tuple[str, ...]) -> set[str]:
    """Users currently holding any of `roles` in the incident."""
    query = select(RoleAssignment.user_id).where(
        RoleAssignment.incident_id == incident_id,
        RoleAssignment.role.in_(roles),
        RoleAssignment.ended_at.is_(None),
    )
    return set(session.scalars(query))


def may_edit(session: Session, draft: DraftView, user_id: str) -> bool:
    """The drafter (role holder, or whoever asked for this draft) and the lead may edit and regenerate."""
    return user_id == draft.requested_by or user_id in role_holders(session, draft.incident_id, EDITORS)


def may_retry(session: Session, draft: DraftView, user_id: str) -> bool:
    """Whoever asked for the draft, and the incident's drafter, approver and lead, may retry a failed one."""
    return user_id == draft.requested_by or user_id in role_holders(session, draft.incident_id, RETRIERS)


def revision_authors(session: Session, draft: DraftView, revision: int) -> set[str]:
    """Who stands behind a revision's text: whoever requested the draft, and whoever wrote that revision
    when it is an edit (the first revision's author is the model or the template, not a person)."""
    written = session.execute(
        select(DraftRevision.author, DraftRevision.kind).where(DraftRevision.draft_id == draft.id)
        .order_by(DraftRevision.id).offset(max(revision - 1, 0)).limit(1)
    ).first()
    authors = {draft.requested_by}
    if written is not None and written.kind == "edit":
        authors.add(written.author)
    return authors


# ----------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class MentionRequest:
    """What a *Draft reply* button on a mention asks for."""

    mention_id: int
    platform: Platform
    text: str
    url: str | None


def mention_request(session: Session, mention_id: int) -> MentionRequest | None:
    """The reply request for a stored mention: its text, link and platform (X when unknown)."""
    mention = session.get(Mention, mention_id)
    if mention is None:
        return None
    platform = platform_for(mention.platform) or PLATFORMS[DEFAULT_PLATFORM]
    return MentionRequest(mention.id, platform, mention.text[:MAX_REQUEST_CHARS], mention.url)


# The same person asking for the same reply again within this long is a double submission (a
# double-clicked button, a command sent twice), not a new request.
DUPLICATE_WINDOW = timedelta(seconds=30)
REQUEST_ATTEMPTS = 3


def draft_request_key(
    incident_id: int, requested_by: str, platform: Platform, request: str, mention_id: int | None = None
) -> str:
    """What identifies a draft request: incident, requester, platform, and the mention or the request text.

    Text is compared case-folded with whitespace collapsed, so a re-sent command matches itself.
    Hashed: the request may be 4,000 characters, the column holds 120.
    """
    subject = f"mention:{mention_id}" if mention_id is not None else "text:" + " ".join(request.casefold().split())
    identity = "\x1f".join((str(incident_id), requested_by, platform.key, subject))
    return "draft:" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class DraftRequest:
    """A recorded draft request; `duplicate` when it repeats one made within DUPLICATE_WINDOW (`draft` is that one)."""

    draft: DraftView
    duplicate: bool
    # This queued job ran before and recorded the request (its worker died, or it was retried): the
    # same draft is carried on, never a second one.
    resumed: bool = False


class DraftRequestConflict(RuntimeError):
    """The request could not be recorded because concurrent requests kept colliding."""


def request_draft_once(
    sessions: sessionmaker[Session],
    *,
    incident_id: int,
    platform: Platform,
    request: str,
    requested_by: str,
    channel_id: str | None = None,
    mention_id: int | None = None,
    reply_to_url: str | None = None,
    now: datetime | None = None,
) -> DraftRequest:
    """Record a draft request in its own transaction, unless the same one was made in the last 30 s.

    The newest request of each key holds `Draft.request_key`; an older holder gives the key up
    (compare-and-set) when a deliberate repeat comes after the window. The unique column settles races
    between threads and processes: the loser's insert fails, and it retries and finds the winner's draft.
    """
    key = draft_request_key(incident_id, requested_by, platform, request, mention_id)
    last_error: IntegrityError | None = None
    for _attempt in range(REQUEST_ATTEMPTS):
        try:
            with transaction(sessions) as session:
                job_key, earlier = timeline.once_per_job(session, timeline.DRAFT_REQUESTED)
                if earlier is not None and (mine := _load(session, int(earlier.data["draft_id"]))) is not None:
                    return DraftRequest(_view(mine), duplicate=False, resumed=True)
                at = now or utcnow()
                holder = session.scalars(select(Draft).where(Draft.request_key == key)).first()
                if holder is not None:
                    if at - holder.requested_at < DUPLICATE_WINDOW:
                        return DraftRequest(_view(holder), duplicate=True)
                    session.execute(
                        update(Draft).where(Draft.id == holder.id, Draft.request_key == key)
                        .values(request_key=None).execution_options(synchronize_session=False)
                    )
                draft = request_draft(
                    session, incident_id=incident_id, platform=platform, request=request,
                    requested_by=requested_by, channel_id=channel_id, mention_id=mention_id,
                    reply_to_url=reply_to_url, request_key=key, now=at, event_key=job_key,
                )
                return DraftRequest(draft, duplicate=False)
        except IntegrityError as exc:
            last_error = exc  # a concurrent identical request recorded first: look again and find it
    raise DraftRequestConflict("could not record the draft request; please try again") from last_error


def request_draft(
    session: Session,
    *,
    incident_id: int,
    platform: Platform,
    request: str,
    requested_by: str,
    channel_id: str | None = None,
    mention_id: int | None = None,
    reply_to_url: str | None = None,
    request_key: str | None = None,
    now: datetime | None = None,
    event_key: str | None = None,
) -> DraftView:
    """Record a draft request (status `requested`) and its timeline event (keyed `event_key` when a
    queued job records it, so a re-run of the job finds its draft)."""
    draft = Draft(
        incident_id=incident_id,
        request_key=request_key,
        platform=platform.key,
        request=request,
        requested_by=requested_by,
        requested_at=now or utcnow(),
        mention_id=mention_id,
        reply_to_url=reply_to_url,
        channel_id=channel_id,
        status=REQUESTED,
        source="llm",
        concerns={},
        attempts=0,
    )
    session.add(draft)
    session.flush()
    timeline.record_event(
        session, incident_id, timeline.DRAFT_REQUESTED,
        f"Draft requested for {platform.name}", actor=requested_by,
        data={"draft_id": draft.id, "platform": platform.key, "mention_id": mention_id}, request_key=event_key,
    )
    return _view(draft)


def set_draft_message(session: Session, draft_id: int, channel_id: str, ts: str) -> None:
    """Remember the Slack message that shows this draft, so later changes update it."""
    session.execute(update(Draft).where(Draft.id == draft_id).values(channel_id=channel_id, slack_ts=ts))


@dataclass(frozen=True)
class DraftJob:
    """One drafting attempt: the draft, the prompt context, and the playbook's holding statement."""

    draft: DraftView
    prompt: PromptContext
    holding_statement: str | None


def start_attempt(session: Session, draft_id: int, plan: Plan) -> DraftJob | None:
    """Count an attempt and gather its context; None when the draft is not awaiting drafting."""
    counted = rows_changed(
        session,
        update(Draft)
        .where(Draft.id == draft_id, Draft.status == REQUESTED)
        .values(attempts=Draft.attempts + 1)
    ) == 1
    if not counted:
        return None
    draft = _load(session, draft_id)
    assert draft is not None
    incident = session.get(Incident, draft.incident_id)
    assert incident is not None
    playbook = plan.playbooks.get(incident.playbook or "")
    facts = session.scalars(select(Fact.text).where(Fact.incident_id == incident.id).order_by(Fact.id))
    messages = session.scalars(
        select(KeyMessage.text).where(KeyMessage.incident_id == incident.id).order_by(KeyMessage.id)
    )
    severity = plan.severities.get(incident.severity)  # type: ignore[call-overload]
    crisis_type = playbook.crisis_type if playbook else None
    advice = strategies.advise(crisis_type, strategies.refuted_claim_in(session, incident.id, draft.request))
    # Kept on the draft (recorded with the result) so its message can say which strategy fits and why.
    draft.concerns = {**(draft.concerns or {}), "advice": {"strategy": advice.strategy, "why": advice.why}}
    session.flush()
    view = _view(draft)
    prompt = PromptContext(
        brand=plan.brand.name,
        voice=plan.tone.voice,
        avoid=tuple(plan.tone.avoid),
        sign_off=plan.tone.sign_off,
        platform_name=view.platform.name,
        limit=view.platform.limit,
        title=incident.title,
        severity=f"{incident.severity} ({severity.label})" if severity else incident.severity,
        playbook=playbook.title if playbook else "none",
        facts=tuple(facts),
        key_messages=tuple(messages),
        post=draft.request,
        post_url=draft.reply_to_url,
        strategy_guidance=strategies.guidance(crisis_type),
        recommended=f"{advice.strategy} ({advice.why})",
    )
    return DraftJob(view, prompt, playbook.holding_statement if playbook else None)


# ----------------------------------------------------------------------------------- results


def review_concerns(text: str, limit: int, avoid: tuple[str, ...] | list[str]) -> list[str]:
    """What War Room itself flags in a reply: over the platform's length, or words the plan avoids."""
    concerns = []
    if len(text) > limit:
        concerns.append(f"{len(text)} characters: over the {limit}-character limit; shorten it first.")
    found = [word for word in avoid if word.strip() and _contains_phrase(text, word)]
    if found:
        listed = ", ".join(f"“{word}”" for word in found)
        concerns.append(f"Uses wording the plan says to avoid: {listed}.")
    return concerns


def _contains_phrase(text: str, phrase: str) -> bool:
    return strategies.contains_phrase(text, phrase)


def record_draft_result(
    session: Session, draft_id: int, result: DraftResult, avoid: tuple[str, ...], never_say: tuple[str, ...] = ()
) -> DraftView:
    """Store a drafted reply (requested → pending), its first revision and the timeline event; a text using
    a `never_say` word no recorded fact uses is flagged (approval then needs an edit)."""
    draft = _load(session, draft_id)
    assert draft is not None
    limit = platform_of(draft.platform).limit
    legal = strategies.never_said(result.text, never_say, strategies.incident_facts(session, draft.incident_id))
    stored = rows_changed(
        session,
        update(Draft)
        .where(Draft.id == draft_id, Draft.status == REQUESTED)
        .values(
            status=PENDING, text=result.text, revision=Draft.revision + 1,
            strategy=result.strategy, rationale=result.rationale,
            concerns={**_advice_of(draft), "model": list(result.concerns),
                      "review": review_concerns(result.text, limit, avoid), "legal": legal},
            model=result.model[:100] if result.model else None, source=result.source, error=None,
        )
    ) == 1
    if stored:
        # The author column holds a Slack user id; the model's name (maybe long) is on the draft itself.
        session.add(DraftRevision(draft_id=draft_id, text=result.text, author=result.source,
                                  kind=result.source, created_at=utcnow()))
        timeline.record_event(
            session, draft.incident_id, timeline.DRAFT_READY,
            f"Draft ready ({result.strategy}, {len(result.text)}/{limit} characters)",
            data={"draft_id": draft_id, "source": result.source, "model": result.model,
                  "strategy": result.strategy, "text": result.text},
        )
    draft = _load(session, draft_id)
    assert draft is not None
    return _view(draft)


def _advice_of(draft: Draft) -> dict[str, Any]:
    advice = (draft.concerns or {}).get("advice")
    return {"advice": advice} if advice else {}


def record_draft_failure(session: Session, draft_id: int, reason: str) -> DraftView:
    """Keep the request (requested → failed) with the reason, so *Retry* can pick it up."""
    draft = _load(session, draft_id)
    assert draft is not None
    failed = rows_changed(
        session,
        update(Draft)
        .where(Draft.id == draft_id, Draft.status == REQUESTED)
        .values(status=FAILED, error=reason)
    ) == 1
    if failed:
        timeline.record_event(
            session, draft.incident_id, timeline.DRAFT_FAILED, f"Drafting failed: {reason}",
            data={"draft_id": draft_id, "reason": reason, "attempts": draft.attempts},
        )
    draft = _load(session, draft_id)
    assert draft is not None
    return _view(draft)


def retry_draft(session: Session, draft_id: int, user_id: str) -> DraftOutcome:
    """Put a failed draft back to `requested` (once, however often *Retry* is clicked). Each retry costs an
    LLM call, so only whoever asked for it and the drafter, approver and lead may."""
    draft = _load(session, draft_id)
    if draft is None:
        return DraftOutcome(None, "not_found")
    if not may_retry(session, _view(draft), user_id):
        return DraftOutcome(_view(draft), "not_allowed", allowed=RETRIERS, requester_may=True)
    retried = rows_changed(
        session,
        update(Draft)
        .where(Draft.id == draft_id, Draft.status == FAILED)
        .values(status=REQUESTED)
    ) == 1
    draft = _load(session, draft_id)
    assert draft is not None
    if not retried:
        return DraftOutcome(_view(draft), "not_failed")
    timeline.record_event(
        session, draft.incident_id, timeline.DRAFT_REQUESTED, "Draft retried", actor=user_id,
        data={"draft_id": draft_id, "retry": True, "previous_error": draft.error},
    )
    return DraftOutcome(_view(draft))


def template_reply(
    holding_statement: str | None, facts: tuple[str, ...], sign_off: str, limit: int
) -> DraftResult:
    """A reply without an LLM: the holding statement, then as many facts and the sign-off as fit the limit."""
    text = _fit(" ".join((holding_statement or GENERIC_HOLDING_STATEMENT).split()), limit)
    sign = " ".join(sign_off.split())
    room = limit - (len(sign) + 1 if sign else 0)
    for fact in facts:
        sentence = " ".join(fact.split()).rstrip(".") + "."
        candidate = f"{text} {sentence}"
        if len(candidate) <= room:
            text = candidate
    if sign and len(text) + 1 + len(sign) <= limit:
        text = f"{text} {sign}"
    source = "the playbook's holding statement" if holding_statement else "a generic holding statement"
    return DraftResult(
        text=text,
        strategy="acknowledge",
        rationale=f"Template built from {source} and the confirmed facts; no LLM is configured.",
        concerns=["Template, not written for this post: check it answers it before approving."],
        model=None,
        source="template",
    )


def _fit(text: str, limit: int) -> str:
    """Cut at the last whole sentence that fits, else the last whole word, never past `limit`."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    if end > 0:
        return cut[: end + 1]
    return cut[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


# ----------------------------------------------------------------------------------- changes

Refusal = Literal[
    "not_found", "not_allowed", "already_decided", "superseded", "not_ready", "stale", "four_eyes", "not_failed",
    "never_say",
]


@dataclass(frozen=True)
class DraftOutcome:
    """What a click did: `draft` after it; `refusal` says why nothing changed; `new_draft` for regenerate.

    `allowed` names the roles that may (and `requester_may` whether whoever asked for the draft may too);
    `others` are who may decide instead under four-eyes approval.
    """

    draft: DraftView | None
    refusal: Refusal | None = None
    new_draft: DraftView | None = None
    allowed: tuple[str, ...] = field(default_factory=tuple)
    requester_may: bool = False
    others: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.refusal is None


def _why_not(draft: Draft, revision: int | None) -> Refusal:
    """Why a change of a draft that is not (or no longer) pending at `revision` cannot be made."""
    if draft.status in (APPROVED, REJECTED):
        return "already_decided"
    if draft.status == SUPERSEDED:
        return "superseded"
    if draft.status == PENDING and draft.revision != revision:
        return "stale"
    return "not_ready"


def decision_check(
    session: Session, draft_id: int, user_id: str, revision: int | None, *, four_eyes: bool = False
) -> DraftOutcome:
    """Whether `user_id` may approve or reject revision `revision` of the draft now: ok with the draft as
    read, or the refusal.

    Only the approver or lead decides, only a pending draft, only the revision the clicker was shown; with
    four-eyes, not whoever requested the draft or wrote that revision, while someone else could decide.
    """
    draft = _load(session, draft_id)
    if draft is None:
        return DraftOutcome(None, "not_found")
    view = _view(draft)
    deciders = role_holders(session, draft.incident_id, DECIDERS)
    if user_id not in deciders:
        return DraftOutcome(view, "not_allowed", allowed=DECIDERS)
    if draft.status != PENDING or draft.revision != revision:
        return DraftOutcome(view, _why_not(draft, revision))
    if four_eyes:
        authors = revision_authors(session, view, draft.revision)
        others = deciders - authors
        if user_id in authors and others:
            return DraftOutcome(view, "four_eyes", others=tuple(sorted(others)))
    return DraftOutcome(view)


def change_check(session: Session, draft_id: int, user_id: str, revision: int | None) -> DraftOutcome:
    """Whether `user_id` may edit or regenerate revision `revision` of the draft now: ok with the draft as
    read, or the refusal."""
    draft = _load(session, draft_id)
    if draft is None:
        return DraftOutcome(None, "not_found")
    view = _view(draft)
    if not may_edit(session, view, user_id):
        return DraftOutcome(view, "not_allowed", allowed=EDITORS, requester_may=True)
    if draft.status != PENDING or draft.revision != revision:
        return DraftOutcome(view, _why_not(draft, revision))
    return DraftOutcome(view)


def _set_if_current(session: Session, draft_id: int, shown: int | None, **values: Any) -> bool:
    """Compare-and-set: change the draft only while it is pending at the revision the clicker was shown.

    One UPDATE, so a concurrent change either commits first (this one then matches nothing: PostgreSQL
    re-checks the WHERE against the row it waited for) or waits for this one.
    """
    return rows_changed(
        session,
        update(Draft)
        .where(Draft.id == draft_id, Draft.status == PENDING, Draft.revision == shown)
        .values(**values)
    ) == 1


def _refused(session: Session, draft_id: int, revision: int | None) -> DraftOutcome:
    """The outcome of a compare-and-set that lost: the draft as it is now, and why."""
    draft = _load(session, draft_id)
    assert draft is not None
    return DraftOutcome(_view(draft), _why_not(draft, revision))


def approve_draft(
    session: Session, draft_id: int, user_id: str, revision: int | None, *, four_eyes: bool = False
) -> DraftOutcome:
    """Approve revision `revision` once: compare-and-set (pending, revision) → approved, storing that
    revision's text verbatim; Decision and timeline in the same transaction."""
    return _decide(session, draft_id, user_id, revision, APPROVED, None, four_eyes)


def reject_draft(
    session: Session, draft_id: int, user_id: str, reason: str, revision: int | None, *, four_eyes: bool = False
) -> DraftOutcome:
    """Reject revision `revision` once, with the reason: compare-and-set (pending, revision) → rejected."""
    reason = reason.strip()
    if not reason:
        raise DraftInputError("Say why the draft is rejected.")
    return _decide(session, draft_id, user_id, revision, REJECTED, reason, four_eyes)


def _decide(
    session: Session, draft_id: int, user_id: str, revision: int | None, status: str, reason: str | None,
    four_eyes: bool,
) -> DraftOutcome:
    checked = decision_check(session, draft_id, user_id, revision, four_eyes=four_eyes)
    if not checked.ok:
        return checked
    if status == APPROVED and checked.draft is not None and checked.draft.legal:
        # The flag belongs to this revision's text (an edit re-checks it in the same UPDATE), so the
        # compare-and-set below on the same revision cannot approve a text other than the one checked.
        return DraftOutcome(checked.draft, "never_say")
    now = utcnow()
    values: dict[str, object] = {"status": status, "decided_by": user_id, "decided_at": now, "reason": reason}
    if status == APPROVED:
        # From the row itself, guarded by the revision: the text of the revision shown, byte for byte.
        values["final_text"] = Draft.text
    if not _set_if_current(session, draft_id, revision, **values):
        return _refused(session, draft_id, revision)
    draft = _load(session, draft_id)
    assert draft is not None
    platform = platform_of(draft.platform)
    what = "stakeholder update" if platform == STAKEHOLDER_UPDATE else f"{platform.name} reply"
    if status == APPROVED:
        session.add(Decision(incident_id=draft.incident_id, kind="draft", decided_by=user_id, decided_at=now,
                             text=f"Approved the {what}: {draft.final_text}"))
        timeline.record_event(
            session, draft.incident_id, timeline.DRAFT_APPROVED, f"Approved the {what}",
            actor=user_id, at=now,
            data={"draft_id": draft_id, "revision": revision, "final_text": draft.final_text},
        )
        complete_statement_task(session, draft.incident_id, user_id)  # the playbook's holding-statement task
    else:
        timeline.record_event(
            session, draft.incident_id, timeline.DRAFT_REJECTED,
            f"Rejected the {what}: {reason}", actor=user_id, at=now,
            data={"draft_id": draft_id, "revision": revision, "reason": reason},
        )
    session.flush()
    return DraftOutcome(_view(draft))


def edit_draft(
    session: Session, draft_id: int, user_id: str, text: str, revision: int | None, avoid: tuple[str, ...] = (),
    never_say: tuple[str, ...] = (),
) -> DraftOutcome:
    """Replace the text of a pending draft still at `revision` (the one the editor started from), keeping
    the new text as the next revision and re-checking length and wording. Of two edits from the same
    revision, the first saved wins and the other is refused: nothing is overwritten unseen."""
    text = text.strip()
    if not text:
        raise DraftInputError("The reply cannot be empty.")
    checked = change_check(session, draft_id, user_id, revision)
    if not checked.ok or checked.draft is None:
        return checked
    view = checked.draft
    draft = _load(session, draft_id)
    assert draft is not None
    concerns = dict(draft.concerns or {})
    concerns["review"] = review_concerns(text, view.platform.limit, avoid)
    concerns["legal"] = strategies.never_said(text, never_say, strategies.incident_facts(session, draft.incident_id))
    if not _set_if_current(session, draft_id, revision, text=text, concerns=concerns,
                           revision=Draft.revision + 1):
        return _refused(session, draft_id, revision)
    session.add(DraftRevision(draft_id=draft_id, text=text, author=user_id, kind="edit", created_at=utcnow()))
    session.flush()
    draft = _load(session, draft_id)
    assert draft is not None
    timeline.record_event(
        session, draft.incident_id, timeline.DRAFT_EDITED,
        f"Draft edited ({len(text)}/{view.platform.limit})", actor=user_id,
        data={"draft_id": draft_id, "revision": draft.revision, "text": text},
    )
    return DraftOutcome(_view(draft))


def regenerate_draft(session: Session, draft_id: int, user_id: str, revision: int | None) -> DraftOutcome:
    """Supersede a pending draft still at `revision` with a new request for the same post (a new Draft)."""
    checked = change_check(session, draft_id, user_id, revision)
    if not checked.ok:
        return checked
    if not _set_if_current(session, draft_id, revision, status=SUPERSEDED):
        return _refused(session, draft_id, revision)
    draft = _load(session, draft_id)
    assert draft is not None
    new = Draft(
        incident_id=draft.incident_id, platform=draft.platform, request=draft.request,
        reply_to_url=draft.reply_to_url, mention_id=draft.mention_id, requested_by=user_id,
        requested_at=utcnow(), channel_id=draft.channel_id, status=REQUESTED, source="llm",
        concerns={}, attempts=0,
    )
    session.add(new)
    session.flush()
    session.execute(update(Draft).where(Draft.id == draft_id).values(superseded_by=new.id))
    timeline.record_event(
        session, draft.incident_id, timeline.DRAFT_REGENERATED, "Draft regenerated", actor=user_id,
        data={"draft_id": new.id, "previous_draft_id": draft_id},
    )
    old = _load(session, draft_id)
    assert old is not None
    return DraftOutcome(_view(old), new_draft=_view(new))
