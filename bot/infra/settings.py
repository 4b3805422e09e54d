"""War Room's configuration, read from the environment (see PRODUCT.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.listening.feed_http import AllowedAddresses, parse_allowed_addresses

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_LLM_MODEL = "gpt-5-mini"


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


DATABASE_URL_FORM = "dialect://user:password@host:port/database, e.g. postgresql://… or sqlite:///warroom.db"
ENCODING_HINT = "percent-encode @ : / in the password (%40 %3A %2F)"


def normalise_database_url(url: str) -> str:
    """Accept Heroku's `postgres://` and plain `postgresql://`, and use psycopg 3 for both."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# The Slack tokens' prefixes, and what kind of token each variable must hold.
TOKEN_SHAPES = {"slack_bot_token": ("xoxb-", "a bot token"), "slack_app_token": ("xapp-", "an app-level token")}


class LogSettings(BaseSettings):
    """The settings logging needs, read on their own at start-up: a command that never reads the rest
    (`warroom demo`) is not refused for an unrelated bad variable."""

    # hide_input_in_errors: a ValidationError, should anything print it, never shows a value (passwords).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False, hide_input_in_errors=True)

    # json: one JSON object per log line (bot/infra/logs.py), for platforms that collect logs.
    warroom_log_format: Literal["text", "json"] = "text"

    @field_validator("warroom_log_format", mode="before")
    @classmethod
    def _format_word(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or "text"
        return value


class Settings(LogSettings):
    """Every environment variable of PRODUCT.md's table. Tokens are kept as secrets so they never print."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = Field(default="sqlite:///warroom.db", repr=False)  # may hold a password
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    warroom_llm_model: str = DEFAULT_LLM_MODEL
    warroom_plan: Path | None = None
    warroom_ingest_token: SecretStr | None = None
    # The bearer token of GET /metrics; unset, /metrics answers 404.
    warroom_metrics_token: SecretStr | None = None
    port: Annotated[int, Field(ge=1, le=65535)] = 3000
    # Exact ip:port pairs feeds may be fetched from although not public (a local test server); none by default.
    warroom_feed_allow_hosts: str = ""

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token", "openai_api_key",
                     "warroom_ingest_token", "warroom_metrics_token", "openai_base_url", "warroom_plan",
                     mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(*TOKEN_SHAPES)
    @classmethod
    def _token_shape(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        prefix, kind = TOKEN_SHAPES[info.field_name or ""]
        if value is not None and not value.get_secret_value().startswith(prefix):
            raise ValueError(f"must be {kind} starting with {prefix}")
        return value

    @field_validator("slack_api_url", "openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins base_url + method name, so without the slash
        # "https://slack.com/api" + "chat.postMessage" would be a wrong URL.
        return value if value.endswith("/") else value + "/"

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Parse the URL and load its driver now, so a bad one is one line at start-up. No message quotes
        the value or SQLAlchemy's words about it: either may hold the password."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        value = normalise_database_url(value)
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"is not a database URL; expected {DATABASE_URL_FORM}") from None
        except ValueError:  # int(port); after an unencoded @ in the password, the "port" is the password's rest
            raise ValueError(f"the port is not a number; {ENCODING_HINT}") from None
        if "@" in (url.host or ""):
            raise ValueError(f"the host holds an @; {ENCODING_HINT}")
        try:
            url.get_dialect().import_dbapi()
        except ArgumentError:  # NoSuchModuleError: no dialect of that name
            raise ValueError(f"no database driver {url.drivername}; expected {DATABASE_URL_FORM}") from None
        except ImportError as exc:
            raise ValueError(
                f"the database driver for {url.drivername} is not installed (no module {exc.name})"
            ) from None
        return value

    @field_validator("warroom_feed_allow_hosts")
    @classmethod
    def _allow_hosts(cls, value: str) -> str:
        parse_allowed_addresses(value)
        return value

    @property
    def feed_allow_hosts(self) -> AllowedAddresses:
        return parse_allowed_addresses(self.warroom_feed_allow_hosts)

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def llm_configured(self) -> bool:
        return self.openai_api_key is not None

    def require(self, *names: str) -> None:
        """Raise SettingsError for the first of `names` that is unset."""
        for name in names:
            if getattr(self, name) is None:
                raise SettingsError(f"{name.upper()} is not set; it is required for this command")


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


def load_settings() -> Settings:
    """Read the environment, turning a validation failure into one SettingsError line."""
    return _read(Settings)


def load_log_settings() -> LogSettings:
    """Read only the logging settings (at start-up, before any command runs)."""
    return _read(LogSettings)


def _read(kind: type[SettingsT]) -> SettingsT:
    try:
        return kind()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"{name}: {message}") from None
