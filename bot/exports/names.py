"""People's names for exports: the `SlackUser` cache, then `users.info`, the id as a last resort."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlalchemy import select, union
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.infra.errors import SlackFailure
from models import (
    Decision,
    Draft,
    Fact,
    Incident,
    KeyMessage,
    RoleAssignment,
    Rumour,
    SlackUser,
    TimelineEvent,
    utcnow,
)

log = logging.getLogger(__name__)


def incident_user_ids(session: Session, incident_id: int) -> set[str]:
    """Every user id an incident's records name: actors, role holders, deciders, authors."""
    columns = [
        (Incident.opened_by, Incident.id),
        (Incident.resolved_by, Incident.id),
        (TimelineEvent.actor, TimelineEvent.incident_id),
        (RoleAssignment.user_id, RoleAssignment.incident_id),
        (RoleAssignment.assigned_by, RoleAssignment.incident_id),
        (RoleAssignment.ended_by, RoleAssignment.incident_id),
        (Decision.decided_by, Decision.incident_id),
        (Fact.added_by, Fact.incident_id),
        (KeyMessage.added_by, KeyMessage.incident_id),
        (Draft.requested_by, Draft.incident_id),
        (Draft.decided_by, Draft.incident_id),
        (Rumour.created_by, Rumour.incident_id),
        (Rumour.decided_by, Rumour.incident_id),
    ]
    query = union(*(select(column).where(owner == incident_id).distinct() for column, owner in columns))
    return {user_id for user_id in session.scalars(select(query.subquery().c[0])) if user_id}


def _name_from_profile(user: dict[str, Any]) -> str:
    profile = user.get("profile") or {}
    return (
        user.get("real_name")
        or profile.get("real_name")
        or profile.get("display_name")
        or user.get("name")
        or user.get("id")
        or ""
    )


def _cache(session: Session, user_id: str, name: str, real_name: str) -> None:
    # Two exports may look the same person up at once: the second insert is simply skipped.
    insert = sqlite_insert if session.get_bind().dialect.name == "sqlite" else postgresql_insert
    values = {"user_id": user_id, "name": name, "real_name": real_name, "fetched_at": utcnow()}
    session.execute(insert(SlackUser).values(**values).on_conflict_do_nothing(index_elements=["user_id"]))


# Asks Slack for one person (`users.info`'s `user`): the Slack port's `user_profile`, or a client's (below).
UserLookup = Callable[[str], dict[str, Any]]


def users_info_lookup(client: WebClient) -> UserLookup:
    """A `UserLookup` straight on a Web API client (the CLI and drills, which have no port)."""
    return lambda user_id: dict(client.users_info(user=user_id)["user"])


def resolve_names(session: Session, user_ids: Iterable[str], lookup: UserLookup | None) -> dict[str, str]:
    """Display names for `user_ids`, caching what `users.info` returns; unknown ids map to themselves.

    When Slack is unreachable the first failure stops further calls, so an export never waits on
    a dead network once per person.
    """
    wanted = set(user_ids)
    names: dict[str, str] = {}
    cached = {
        row.user_id: row for row in session.scalars(select(SlackUser).where(SlackUser.user_id.in_(wanted)))
    }
    for user_id, row in cached.items():
        names[user_id] = row.real_name or row.name
    for user_id in sorted(wanted - names.keys()):
        if lookup is None:
            break
        try:
            user = lookup(user_id)
        except SlackApiError as exc:
            log.info("users.info %s: %s; showing the id", user_id, exc.response.get("error"))
            continue
        except SlackFailure as failure:
            if failure.transient:
                log.warning("Slack unreachable for names (%s); showing ids", failure)
                lookup = None
            else:
                log.info("users.info %s: %s; showing the id", user_id, failure.code)
            continue
        except (SlackClientError, OSError) as exc:
            log.warning("Slack unreachable for names (%s); showing ids", type(exc).__name__)
            lookup = None
            continue
        name = _name_from_profile(user) or user_id
        _cache(session, user_id, (user.get("name") or name)[:120], name[:200])
        names[user_id] = name
    for user_id in wanted - names.keys():
        names[user_id] = user_id
    return names
