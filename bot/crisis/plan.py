"""The crisis plan: the YAML a comms team writes before the crisis, validated with pydantic."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

SEVERITIES = ("sev1", "sev2", "sev3", "sev4")
Severity = Literal["sev1", "sev2", "sev3", "sev4"]
DEFAULT_ROLES = ("lead", "monitor", "drafter", "approver", "liaison")
# Roles only the plan or the incident's lead may fill; a plan may mark more with `signoff: true`.
SIGNOFF_ROLES = ("lead", "approver")

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
USERGROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_REF = re.compile(r"^([CG][A-Z0-9]{2,}|#[a-z0-9_-]{1,80})$")
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")

BUNDLED_PLAN = Path(__file__).resolve().parents[1] / "plan.example.yml"


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
    search: str | None = None

    @model_validator(mode="after")
    def _tag_or_search(self) -> MastodonFeed:
        if (self.tag is None) == (self.search is None):
            raise ValueError("give exactly one of `tag` or `search`")
        return self


class Feeds(_Strict):
    poll_minutes: Annotated[int, Field(ge=1, le=1440)] = 5
    rss: list[RssFeed] = []
    mastodon: list[MastodonFeed] = []


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


class Playbook(_Strict):
    title: Annotated[str, Field(min_length=1, max_length=80)]
    description: Annotated[str, Field(max_length=2000)] = ""
    severity: Severity = "sev3"
    keywords: list[str] = []
    checklist: list[Annotated[str, Field(min_length=1, max_length=300)]] = []
    holding_statement: Annotated[str, Field(min_length=1, max_length=2000)]

    @field_validator("keywords")
    @classmethod
    def _lowercase(cls, value: list[str]) -> list[str]:
        return [keyword.strip().lower() for keyword in value]


class Tone(_Strict):
    voice: str = "Calm, human and empathetic. Plain words, short sentences."
    avoid: list[str] = []
    sign_off: str = ""


class Approval(_Strict):
    # Four-eyes: whoever requested a draft or wrote its current text may not also sign it off.
    four_eyes: bool = False


class ChannelSettings(_Strict):
    prefix: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[a-z0-9][a-z0-9_-]*$")] = "crisis"
    private: bool = False


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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (like Europe/London)") from None
        return value

    @field_validator("alert_channel")
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
            if not SLUG.match(name) or len(name) > 30:
                raise ValueError(f"role name {name!r} must be lowercase letters, digits, - or _")
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
            if not SLUG.match(name) or len(name) > 30 or name in SEVERITIES:
                raise ValueError(f"playbook name {name!r} must be lowercase letters, digits, - or _")
        return value

    @field_validator("drills")
    @classmethod
    def _drills(cls, value: dict[str, Drill], info: ValidationInfo) -> dict[str, Drill]:
        playbooks = info.data.get("playbooks") or {}
        for name, drill in value.items():
            if not SLUG.match(name) or len(name) > 30:
                raise ValueError(f"drill name {name!r} must be lowercase letters, digits, - or _")
            if drill.playbook is not None and drill.playbook not in playbooks:
                raise ValueError(f"drill {name!r}: playbook {drill.playbook!r} is not one of the plan's playbooks")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_signoff(self, role: str) -> bool:
        """Whether `role` is a sign-off role: filled only by the plan or the incident's lead."""
        spec = self.roles.get(role)
        return spec is not None and (role in SIGNOFF_ROLES or bool(spec.signoff))

    def digest_minutes(self, severity: str) -> int:
        return self.severities[severity].digest_minutes  # type: ignore[index]


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
