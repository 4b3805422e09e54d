"""SQLAlchemy 2 models and the session factory. No Slack, no HTTP."""

from models.base import Base, UTCDateTime, utcnow
from models.catchup import CatchupMark
from models.db import make_engine, make_session_factory, ping, reading, rows_changed, transaction
from models.drafts import Draft, DraftRevision
from models.escalations import Escalation, MentionSighting, SentimentCorrection
from models.incidents import (
    Decision,
    Fact,
    Incident,
    KeyMessage,
    RoleAssignment,
    Rumour,
    SlackUser,
    TimelineEvent,
)
from models.jobs import Job
from models.mentions import Digest, FeedCursor, Mention, SpikeAlert
from models.publications import Publication
from models.tasks import ChannelArchive, FollowUp, Task
from models.updates import StakeholderPost, UpdateReminder

__all__ = [
    "Base", "UTCDateTime", "utcnow", "make_engine", "make_session_factory", "ping", "reading", "rows_changed",
    "transaction",
    "Decision", "Digest", "Escalation", "Job", "Draft", "DraftRevision", "Fact", "FeedCursor", "Incident",
    "KeyMessage", "CatchupMark", "Mention", "MentionSighting", "Publication", "RoleAssignment",
    "SentimentCorrection", "Rumour", "SlackUser", "SpikeAlert", "TimelineEvent",
    "StakeholderPost", "UpdateReminder", "Task", "FollowUp", "ChannelArchive",
]
