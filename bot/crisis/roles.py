"""Who holds which role in an incident, and handing roles on. Plain values in, plain values out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.crisis.plan import Plan
from bot.crisis.timeline import ROLE_ASSIGNED, ROLE_ENDED, record_event
from bot.infra.mrkdwn import escape_mrkdwn
from models import Incident, RoleAssignment, utcnow

LEAD = "lead"


class RoleError(Exception):
    """A role change that is not allowed or makes no sense; the message says why, for the person who asked."""


class UnknownRole(RoleError):
    def __init__(self, role: str, valid: list[str]) -> None:
        names = ", ".join(f"`{name}`" for name in valid)
        super().__init__(f"`{escape_mrkdwn(role[:40])}` is not a role in this plan. Roles: {names}.")
        self.role = role
        self.valid = valid


@dataclass(frozen=True)
class RoleHolders:
    """One role of the plan and who holds it now (possibly nobody)."""

    role: str
    title: str
    description: str
    holders: tuple[str, ...]
    signoff: bool = False  # only the plan or the lead fills it: no *Claim* button


@dataclass(frozen=True)
class Assignment:
    """What `assign_role` did: the new holder, and whom it replaced."""

    incident_id: int
    role: str
    title: str
    description: str
    user_id: str
    replaced: tuple[str, ...]
    changed: bool


def active_holders(session: Session, incident_id: int) -> dict[str, list[str]]:
    """role → user ids currently holding it, in the order they were assigned."""
    rows = session.scalars(
        select(RoleAssignment)
        .where(RoleAssignment.incident_id == incident_id, RoleAssignment.ended_at.is_(None))
        .order_by(RoleAssignment.id)
    )
    holders: dict[str, list[str]] = {}
    for row in rows:
        holders.setdefault(row.role, []).append(row.user_id)
    return holders


def lead_of(session: Session, incident_id: int) -> str | None:
    """The incident's current lead, if anyone holds the role."""
    return leads_of(session, [incident_id]).get(incident_id)


def leads_of(session: Session, incident_ids: Sequence[int]) -> dict[int, str]:
    """incident id → its current lead (the first assigned), for those that have one: one query for a list."""
    if not incident_ids:
        return {}
    rows = session.execute(
        select(RoleAssignment.incident_id, RoleAssignment.user_id)
        .where(
            RoleAssignment.incident_id.in_(incident_ids),
            RoleAssignment.role == LEAD,
            RoleAssignment.ended_at.is_(None),
        )
        .order_by(RoleAssignment.id)
    )
    leads: dict[int, str] = {}
    for incident_id, user_id in rows:
        leads.setdefault(incident_id, user_id)
    return leads


def role_table(session: Session, plan: Plan, incident_id: int) -> list[RoleHolders]:
    """Every role of the plan, in plan order, with its holders; held roles the plan dropped come last."""
    holders = active_holders(session, incident_id)
    table = [
        RoleHolders(name, role.title, role.description, tuple(holders.get(name, [])), plan.is_signoff(name))
        for name, role in plan.roles.items()
    ]
    table += [
        RoleHolders(name, name, "", tuple(users)) for name, users in holders.items() if name not in plan.roles
    ]
    return table


def _either(users: Iterable[str]) -> str:
    return " or ".join(f"<@{user}>" for user in users)


def fill_refusal(session: Session, plan: Plan, incident_id: int, role: str, actor: str, target: str) -> str | None:
    """Why `actor` may not put `target` in `role`, naming who can; None when they may.

    Anyone fills an ordinary role, themselves included. A sign-off role is filled by the plan at open and
    afterwards only by a current lead, who may name anyone, themselves too. With nobody leading, the plan's
    `lead` members stand in for the lead; a plan that names none leaves nobody who can, and says so.
    """
    if not plan.is_signoff(role):
        return None
    leads = active_holders(session, incident_id).get(LEAD, [])
    if actor in leads:
        return None
    title = f"*{escape_mrkdwn(plan.roles[role].title)}*"
    if leads:
        if role == LEAD:
            return f"Only the lead ({_either(leads)}) can hand the lead role to someone else."
        if target == actor:
            return f"{title} is a sign-off role: you cannot take it yourself. Ask the lead, {_either(leads)}."
        return f"{title} is a sign-off role: only the lead, {_either(leads)}, can put someone in it."
    stand_ins = plan.roles[LEAD].members
    if actor in stand_ins:
        return None
    if stand_ins:
        return f"Nobody leads this incident, so only the plan's lead, {_either(stand_ins)}, can fill {title}."
    return (
        f"Nobody leads this incident and the plan names no lead (`roles.lead.members`), so nobody can fill "
        f"{title} from Slack. Name a lead in the plan."
    )


def plan_holders(plan: Plan, opener: str) -> dict[str, list[str]]:
    """Who the plan puts in each role at open (user-group members come later, once resolved); the lead is
    the plan's first lead member, else the opener."""
    holders = {name: list(dict.fromkeys(role.members)) for name, role in plan.roles.items() if role.members}
    holders[LEAD] = [plan.roles[LEAD].members[0]] if plan.roles[LEAD].members else [opener]
    return holders


def add_holders(
    session: Session,
    incident_id: int,
    role: str,
    user_ids: Iterable[str],
    actor: str,
    *,
    at: datetime | None = None,
    reason: str = "",
) -> list[str]:
    """Add holders to a role without ending anyone's (the plan's members at open); returns those added."""
    at = at or utcnow()
    current = set(active_holders(session, incident_id).get(role, []))
    added = []
    for user_id in dict.fromkeys(user_ids):
        if user_id in current:
            continue
        session.add(
            RoleAssignment(
                incident_id=incident_id, role=role, user_id=user_id, assigned_by=actor, assigned_at=at
            )
        )
        record_event(
            session,
            incident_id,
            ROLE_ASSIGNED,
            f"<@{user_id}> is {role}{reason}",
            actor=actor,
            data={"role": role, "user": user_id},
            at=at,
        )
        added.append(user_id)
    session.flush()
    return added


def assign_role(
    session: Session,
    plan: Plan,
    incident_id: int,
    role: str,
    user_id: str,
    actor: str,
    *,
    claim: bool = False,
) -> Assignment:
    """Put `user_id` in `role`, ending the current holders' assignments (kept as history).

    `fill_refusal` decides who may (sign-off roles: the lead). With `claim`, the role must be empty (a
    *Claim* button).
    """
    role = role.lower().lstrip("@")
    if role not in plan.roles:
        raise UnknownRole(role, list(plan.roles))
    spec = plan.roles[role]
    # Lock the incident row so two concurrent reassignments cannot both end the same holder.
    incident = session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise RoleError("This incident no longer exists.")
    current = session.scalars(
        select(RoleAssignment)
        .where(
            RoleAssignment.incident_id == incident_id,
            RoleAssignment.role == role,
            RoleAssignment.ended_at.is_(None),
        )
        .order_by(RoleAssignment.id)
    ).all()
    refusal = fill_refusal(session, plan, incident_id, role, actor, user_id)
    if refusal:
        raise RoleError(refusal)
    holders = [row.user_id for row in current]
    if claim and holders:
        who = ", ".join(f"<@{h}>" for h in holders)
        raise RoleError(f"{spec.title} is already taken by {who}.")
    if holders == [user_id]:
        return Assignment(incident_id, role, spec.title, spec.description, user_id, (), changed=False)
    now = utcnow()
    replaced = []
    for row in current:
        if row.user_id == user_id:
            continue
        row.ended_at, row.ended_by = now, actor
        record_event(
            session,
            incident_id,
            ROLE_ENDED,
            f"<@{row.user_id}> is no longer {role}",
            actor=actor,
            data={"role": role, "user": row.user_id},
            at=now,
        )
        replaced.append(row.user_id)
    if user_id not in holders:
        session.add(
            RoleAssignment(
                incident_id=incident_id, role=role, user_id=user_id, assigned_by=actor, assigned_at=now
            )
        )
        how = " (claimed)" if claim else ""
        record_event(
            session,
            incident_id,
            ROLE_ASSIGNED,
            f"<@{user_id}> is {role}{how}",
            actor=actor,
            data={"role": role, "user": user_id, "replaced": replaced, "claimed": claim},
            at=now,
        )
    session.flush()
    return Assignment(incident_id, role, spec.title, spec.description, user_id, tuple(replaced), changed=True)
