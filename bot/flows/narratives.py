"""`/crisis narratives`: group the incident's mentions in its severity's window now, and tell the asker.

Answered privately: the scheduled digest already shows every narrative to the whole room, and an
on-demand look by one person should not add a message to the channel that is the incident's record
(`/crisis digest` is the way to post to the room now).
"""

from __future__ import annotations

from datetime import datetime

from bot.background.runtime import Runtime
from bot.drafting.narrative_titles import title_narratives
from bot.flows.port import NarrativesMessage, SlackPort
from bot.listening.narratives import incident_narratives
from models import transaction, utcnow


def tell_narratives(runtime: Runtime, port: SlackPort, incident_id: int, *, now: datetime | None = None) -> None:
    """Compute the incident's narratives now (titled by the LLM when one is configured) and tell the asker."""
    with transaction(runtime.sessions) as session:
        narratives, minutes = incident_narratives(session, runtime.plan, incident_id, now or utcnow())
    title_narratives(runtime, narratives, runtime.plan.brand.name)
    port.tell(NarrativesMessage(narratives, minutes, runtime.plan.brand.name))
