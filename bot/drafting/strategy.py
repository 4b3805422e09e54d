"""Which response strategy a draft should take, and the legal guard on its wording.

Strategies follow situational crisis communication theory (SCCT, Coombs): the crisis type a playbook
declares (its cluster) decides which strategies fit, and denial is never mixed with apology. A tracked
rumour the team refuted makes `correct` the default for any post that repeats it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Fact, Rumour
from models.incidents import REFUTED

# What the system prompt recommends for each crisis type (the plan's `playbooks.<name>.crisis_type`).
GUIDANCE = {
    "victim": (
        "This is a *victim* crisis (a rumour, tampering or a disaster not of our making): we are not to blame. "
        "Give instructing information (what people should know and do) and show concern for anyone affected. "
        "Correct false claims politely with the confirmed facts. Do not apologise for what we did not do."
    ),
    "accidental": (
        "This is an *accidental* crisis (a technical failure or harm we did not intend). Show concern, explain "
        "what happened and what is being done, using the confirmed facts. Lessen our responsibility only where "
        "a confirmed fact supports it (for example an outside cause), never by guessing."
    ),
    "preventable": (
        "This is a *preventable* crisis (human error or misconduct on our side). Apologise fully and plainly, "
        "say what corrective action is being taken, and offer compensation only where the confirmed facts "
        "support it. Never deny, minimise or shift blame."
    ),
}
NO_TYPE = ("The playbook names no crisis type: choose the strategy from the confirmed facts alone, and take "
           "responsibility only where they show we are at fault.")
NEVER_MIX = "Never mix denial with apology: a reply either corrects a false claim or apologises, not both."
# The strategy a draft defaults to (the model may choose another and must say why).
DEFAULT_STRATEGY = {"victim": "inform", "accidental": "inform", "preventable": "apologise"}
MIN_SHARED_WORDS = 3
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
_STOP = frozenset({
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "for", "with", "from", "by", "is", "are",
    "was", "were", "be", "been", "being", "it", "its", "this", "that", "these", "those", "they", "them", "their",
    "there", "here", "have", "has", "had", "not", "no", "do", "does", "did", "will", "would", "can", "could",
    "should", "about", "into", "over", "than", "then", "just", "very", "our", "your", "we", "you", "he", "she",
    "his", "her", "who", "what", "when", "where", "why", "how", "all", "any", "some", "more", "most",
})


def guidance(crisis_type: str | None) -> str:
    """The system prompt's strategy paragraph for a crisis type (or for none)."""
    return f"{GUIDANCE.get(crisis_type or '', NO_TYPE)}\n{NEVER_MIX}"


@dataclass(frozen=True)
class Advice:
    """The strategy a draft should default to, and why, in one line for the approver."""

    strategy: str
    why: str


def _words(text: str) -> set[str]:
    return {word for word in (w.casefold() for w in _WORD.findall(text)) if len(word) > 2 and word not in _STOP}


def repeats_claim(post: str, claim: str) -> bool:
    """Whether `post` repeats a rumour's claim: most of the claim's content words (at least three, or all of
    a shorter claim's) appear in the post."""
    claimed = _words(claim)
    if not claimed:
        return False
    shared = len(claimed & _words(post))
    return shared >= min(len(claimed), MIN_SHARED_WORDS) and shared * 2 >= len(claimed)


def refuted_claim_in(session: Session, incident_id: int, post: str) -> str | None:
    """The claim of a rumour the team refuted in this incident that `post` repeats, if any."""
    claims = session.scalars(
        select(Rumour.claim).where(Rumour.incident_id == incident_id, Rumour.status == REFUTED).order_by(Rumour.id)
    )
    return next((claim for claim in claims if repeats_claim(post, claim)), None)


def advise(crisis_type: str | None, refuted_claim: str | None) -> Advice:
    """The default strategy for a reply: `correct` for a post repeating a refuted rumour, else the crisis
    type's (inform when the playbook names none)."""
    if refuted_claim is not None:
        short = " ".join(refuted_claim.split())
        short = short if len(short) <= 80 else short[:79] + "…"
        return Advice("correct", f"the post repeats a rumour the team refuted (“{short}”)")
    if crisis_type is None:
        return Advice("inform", "no crisis type in the playbook: share what is confirmed")
    strategy = DEFAULT_STRATEGY[crisis_type]
    return Advice(strategy, f"{crisis_type} crisis: {GUIDANCE_SHORT[crisis_type]}")


GUIDANCE_SHORT = {
    "victim": "instruct, show concern, correct false claims with facts",
    "accidental": "show concern and explain with the facts",
    "preventable": "full apology and corrective action",
}


# ----------------------------------------------------------------------------------- the legal guard


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` appears in `text` as whole words (case-insensitive, any whitespace between words)."""
    parts = phrase.split()
    if not parts:
        return False
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(part) for part in parts) + r"(?!\w)"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def never_said(text: str, never_say: tuple[str, ...] | list[str], facts: tuple[str, ...] | list[str]) -> list[str]:
    """The plan's `tone.never_say` words that `text` uses although no recorded fact does."""
    return [word for word in never_say
            if contains_phrase(text, word) and not any(contains_phrase(fact, word) for fact in facts)]


def incident_facts(session: Session, incident_id: int) -> tuple[str, ...]:
    """The incident's recorded facts, oldest first."""
    return tuple(session.scalars(select(Fact.text).where(Fact.incident_id == incident_id).order_by(Fact.id)))
