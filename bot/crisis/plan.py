"""The crisis plan: the YAML a comms team writes before the crisis, validated with pydantic."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
Severity = Literal["sev1", "sev2", "sev3", "sev4"]
CrisisType = Literal["victim", "accidental", "preventable"]
DEFAULT_ROLES = ("lead", "monitor", "drafter", "approver", "liaison")
# Roles only the plan or the incident's lead may fill; a plan may mark more with `signoff: true`.
SIGNOFF_ROLES = ("lead", "approver")

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_REF = re.compile(r"^([CG][A-Z0-9]{2,}|#[a-z0-9_-]{1,80})$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

BUNDLED_PLAN = Path(__file__).resolve().parents[1] / "plan.example.yml"


def _check_name(name: str, what: str, reserved: Collection[str] = ()) -> None:
    """A role, playbook or drill name is a short slug, as typed in commands (and not one of `reserved`)."""
    if not SLUG.match(name) or len(name) > 30 or name in reserved:
        raise ValueError(f"{what} name {name!r} must be lowercase letters, digits, - or _")


class PlanError(Exception):
    """The plan is unreadable or invalid; the message names the file, the key path and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Brand(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=80)]
    keywords: list[Annotated[str, Field(min_length=2, max_length=100)]] = Field(min_length=1)

    @field_validator("keywords")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [keyword.strip().lower() for keyword in value]


class RssFeed(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://")]
    name: str | None = None


class MastodonFeed(_Strict):
    instance: Annotated[str, Field(pattern=r"^https?://[^/]+/?$")]
    tag: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9_]+$")] = None
    search: Annotated[str | None, Field(min_length=1, max_length=200)] = None
    # Search needs a user token; without one here, the publishing account's token serves its own instance.
    token_env: Annotated[str | None, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")] = None

    @model_validator(mode="after")
    def _tag_or_search(self) -> MastodonFeed:
        if (self.tag is None) == (self.search is None):
            raise ValueError("give exactly one of `tag` or `search`")
        return self


ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,99}$"


class MastodonAccount(_Strict):
    """A Mastodon account War Room publishes as: the instance and the variable holding its access token."""

    instance: Annotated[str, Field(pattern=r"^https?://[^/\s]+/?$")]
    token_env: Annotated[str, Field(pattern=ENV_NAME)]


class BlueskyAccount(_Strict):
    """A Bluesky account: its handle, its PDS, and the variable holding an app password."""

    handle: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{1,252}$")]
    password_env: Annotated[str, Field(pattern=ENV_NAME)]
    pds: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] = "https://bsky.social"


class Publishing(_Strict):
    """Where approved replies may be published (bot/publishing). Secrets are named, never written here."""

    timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    mastodon: MastodonAccount | None = None
    bluesky: BlueskyAccount | None = None


class BlueskySearch(_Strict):
    """Keywords searched on Bluesky with app.bsky.feed.searchPosts (which needs a signed-in account)."""

    queries: list[Annotated[str, Field(min_length=2, max_length=200)]] = Field(min_length=1, max_length=20)
    account: BlueskyAccount | None = None  # a read account; default: publishing.bluesky


class Feeds(_Strict):
    poll_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    rss: list[RssFeed] = []
    mastodon: list[MastodonFeed] = []
    bluesky: BlueskySearch | None = None


class SpikeThresholds(_Strict):
    window_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    baseline_windows: Annotated[int, Field(ge=2, le=672)] = 8
    min_count: Annotated[int, Field(ge=1)] = 20
    z_score: Annotated[float, Field(gt=0)] = 3.0
    ratio: Annotated[float, Field(gt=1)] = 2.0
    negative_share: Annotated[float, Field(ge=0, le=1)] = 0.5
    # Negativity judged against the baseline's own negative share: points above it (None: off).
    negative_points: Annotated[float | None, Field(gt=0, le=100)] = 20.0
    persistence: Annotated[int, Field(ge=1, le=2)] = 1  # consecutive windows that must cross
    cooldown_minutes: Annotated[int, Field(ge=1, le=10080)] = 60


class EscalationThresholds(_Strict):
    """When one mention is pushed into the open incidents it belongs to (any threshold; None: off)."""

    negative_reach: Annotated[int | None, Field(ge=1)] = 50_000
    engagement_per_minute: Annotated[float | None, Field(gt=0)] = 100.0
    rumour_reach: Annotated[int | None, Field(ge=1)] = 10_000
    hourly_cap: Annotated[int, Field(ge=1, le=100)] = 5


class SeverityLevel(_Strict):
    label: Annotated[str, Field(min_length=1, max_length=40)]
    description: str = ""
    digest_minutes: Annotated[int, Field(ge=5, le=1440)]
    # How often stakeholders expect an update at this severity; unset: no overdue-update reminders.
    update_minutes: Annotated[int | None, Field(ge=5, le=1440)] = None
    # When the first holding statement is due after the open (the brief shows it; the export compares).
    # Unset: 60 minutes for sev1 and sev2, no target for sev3 and sev4.
    first_statement_minutes: Annotated[int | None, Field(ge=1, le=1440)] = None


class Role(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=60)]
    description: Annotated[str, Field(max_length=1500)] = ""
    members: list[str] = []
    usergroup: str | None = None
    signoff: bool | None = None  # unset: true for lead and approver, false for the rest

    @field_validator("members")
    @classmethod
    def _user_ids(cls, value: list[str]) -> list[str]:
        for member in value:
            if not USER_ID.match(member):
                raise ValueError(f"{member!r} is not a Slack user id (like U012ABCDEF)")
        return value

    @field_validator("usergroup")
    @classmethod
    def _usergroup_id(cls, value: str | None) -> str | None:
        if value is not None and not USERGROUP_ID.match(value):
            raise ValueError(f"{value!r} is not a Slack user-group id (like S012ABCDEF)")
        return value


class ChecklistItem(_Strict):
    """A checklist item that becomes a task with an owner role and a due time (`due: 30m`)."""

    text: Annotated[str, Field(min_length=1, max_length=300)]
    owner: str | None = None  # a role of the plan; its holder owns the task
    due: str | None = None  # after the open: `30m`, `2h`
    kind: Literal["statement"] | None = None  # `statement`: the first approved statement completes it

    @field_validator("due")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{1,4}[mh]", value.strip()):
            raise ValueError(f"{value!r} is not a due time after the open: write minutes or hours, like 30m or 2h")
        return value.strip() if value is not None else None

    @property
    def due_minutes(self) -> int | None:
        if self.due is None:
            return None
        number = int(self.due[:-1].strip())
        return number * 60 if self.due.endswith("h") else number


class Playbook(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=80)]
    description: Annotated[str, Field(max_length=2000)] = ""
    severity: Severity = "sev3"
    keywords: list[str] = []
    checklist: list[Annotated[str, Field(min_length=1, max_length=300)] | ChecklistItem] = []
    holding_statement: Annotated[str, Field(min_length=1, max_length=2000)]
    # The situational crisis communication theory cluster; it picks the response strategies drafts use.
    crisis_type: CrisisType | None = None

    @field_validator("keywords")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [keyword.strip().lower() for keyword in value]


class Tone(_Strict):
    voice: str = "Calm, human and empathetic. Plain words, short sentences."
    avoid: list[str] = []
    sign_off: str = ""
    # Legal guard: a draft using one of these (unless a recorded fact does) cannot be approved unedited.
    never_say: list[Annotated[str, Field(min_length=2, max_length=60)]] = []


class Approval(_Strict):
    # Four-eyes: whoever requested a draft or wrote its current text may not also sign it off.
    four_eyes: bool = False


class ChannelSettings(_Strict):
    prefix: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "crisis"
    private: bool = False
    archive_after_days: Annotated[int | None, Field(ge=1, le=365)] = None  # unset: never archived


class MentionSettings(_Strict):
    lookback_minutes: Annotated[int, Field(ge=0, le=10080)] = 120


class Drill(_Strict):
    """A practice drill the plan defines: `/crisis drill <name>`, or `warroom drill <name>`."""

    file: Annotated[str, Field(min_length=1, max_length=500)]
    speed: Annotated[float, Field(gt=0, le=100_000)] = 60
    playbook: str | None = None
    title: Annotated[str | None, Field(min_length=1, max_length=150)] = None
    # Where the drill's spike alerts go. Unset: a channel of the drill's own (`<prefix>-drill-alerts`),
    # never the plan's alert_channel.
    alert_channel: str | None = None
    platform: Annotated[str | None, Field(min_length=1, max_length=40)] = None  # for rows without one

    @field_validator("alert_channel")
    @classmethod
    def _channel_ref(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL_REF.match(value):
            raise ValueError(f"{value!r} is not a channel id (C…) or #channel-name")
        return value


def _default_roles() -> dict[str, Role]:
    return {
        "lead": Role(title="Incident lead", description="Owns the incident and its decisions."),
        "monitor": Role(title="Monitor", description="Watches mentions and rumours."),
        "drafter": Role(title="Drafter", description="Writes public replies."),
        "approver": Role(title="Approver", description="Signs off public statements."),
        "liaison": Role(title="Liaison", description="Coordinates teams and stakeholders."),
    }


class Plan(_Strict):
    """A whole crisis plan. Every key is documented in plan.example.yml."""

    brand: Brand
    timezone: str = "UTC"
    alert_channel: str | None = None
    stakeholder_channel: str | None = None
    feeds: Feeds = Feeds()
    spike: SpikeThresholds = SpikeThresholds()
    escalation: EscalationThresholds = EscalationThresholds()
    severities: dict[Severity, SeverityLevel]
    roles: dict[str, Role] = Field(default_factory=_default_roles)
    playbooks: dict[str, Playbook] = {}
    tone: Tone = Tone()
    approval: Approval = Approval()
    channel: ChannelSettings = ChannelSettings()
    mentions: MentionSettings = MentionSettings()
    drills: dict[str, Drill] = {}
    publishing: Publishing = Publishing()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (like Europe/London)") from None
        return value

    @field_validator("alert_channel", "stakeholder_channel")
    @classmethod
    def _channel_ref(cls, value: str | None) -> str | None:
        if value is not None and not CHANNEL_REF.match(value):
            raise ValueError(f"{value!r} is not a channel id (C…) or #channel-name")
        return value

    @field_validator("severities")
    @classmethod
    def _all_severities(cls, value: dict[str, SeverityLevel]) -> dict[str, SeverityLevel]:
        missing = [name for name in SEVERITIES if name not in value]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}: all of sev1–sev4 must be defined")
        return value

    @field_validator("roles")
    @classmethod
    def _role_names(cls, value: dict[str, Role]) -> dict[str, Role]:
        for name in value:
            _check_name(name, "role")
        if "lead" not in value:
            raise ValueError("a `lead` role is required: it owns the incident")
        for name in SIGNOFF_ROLES:
            if name in value and value[name].signoff is False:
                raise ValueError(f"`{name}` is always a sign-off role: remove its `signoff: false`")
        return value

    @field_validator("playbooks")
    @classmethod
    def _playbook_names(cls, value: dict[str, Playbook]) -> dict[str, Playbook]:
        for name in value:
            _check_name(name, "playbook", reserved=SEVERITIES)
        return value

    @field_validator("playbooks")
    @classmethod
    def _checklist_owners(cls, value: dict[str, Playbook], info: ValidationInfo) -> dict[str, Playbook]:
        roles = info.data.get("roles") or {}
        for name, playbook in value.items():
            for item in playbook.checklist:
                if isinstance(item, ChecklistItem) and item.owner is not None and item.owner not in roles:
                    raise ValueError(
                        f"playbook {name!r}: checklist owner {item.owner!r} is not one of the plan's roles")
        return value

    @field_validator("drills")
    @classmethod
    def _drills(cls, value: dict[str, Drill], info: ValidationInfo) -> dict[str, Drill]:
        playbooks = info.data.get("playbooks") or {}
        for name, drill in value.items():
            _check_name(name, "drill")
            if drill.playbook is not None and drill.playbook not in playbooks:
                raise ValueError(f"drill {name!r}: playbook {drill.playbook!r} is not one of the plan's playbooks")
        return value

    @model_validator(mode="after")
    def _bluesky_search_account(self) -> Plan:
        if self.feeds.bluesky is not None and self.feeds.bluesky.account is None and self.publishing.bluesky is None:
            raise ValueError("feeds.bluesky: Bluesky search needs a signed-in account: give `feeds.bluesky.account` "
                             "or a `publishing.bluesky` account")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_signoff(self, role: str) -> bool:
        """Whether `role` is a sign-off role: filled only by the plan or the incident's lead."""
        spec = self.roles.get(role)
        return spec is not None and (role in SIGNOFF_ROLES or bool(spec.signoff))

    def digest_minutes(self, severity: str) -> int:
        return self.severities[severity].digest_minutes  # type: ignore[index]

    def first_statement_minutes(self, severity: str) -> int | None:
        """Minutes after the open the first holding statement is due; None when the severity sets no target."""
        level = self.severities.get(severity)  # type: ignore[call-overload]
        if level is not None and level.first_statement_minutes is not None:
            return int(level.first_statement_minutes)
        return 60 if severity in ("sev1", "sev2") else None


def _key_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _describe(error: dict) -> str:  # type: ignore[type-arg]
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")


def parse_plan(text: str, source: str = "plan.yml") -> Plan:
    """Parse and validate plan YAML; PlanError names `source`, the key path and the problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise PlanError(f"{source}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{source}: the plan must be a YAML mapping with at least `brand` and `severities`")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        # One line per problem, each naming the file and the key path, so all can be fixed at once.
        lines = [f"{source}: {_key_path(error['loc'])}: {_describe(dict(error))}" for error in exc.errors()]
        raise PlanError("\n".join(lines)) from None


def plan_path(configured: Path | None) -> Path:
    """The plan in force: WARROOM_PLAN, else ./plan.yml, else the bundled example."""
    if configured is not None:
        return configured
    local = Path("plan.yml")
    return local if local.exists() else BUNDLED_PLAN


def load_plan(path: Path) -> Plan:
    """Read and validate a plan file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the plan ({exc.strerror})") from None
    return parse_plan(text, source=str(path))
