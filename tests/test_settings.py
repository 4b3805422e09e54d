"""Settings: every variable of PRODUCT.md, normalised, and one clear line when something is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.infra.settings import Settings, SettingsError, load_log_settings, load_settings, normalise_database_url


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "SLACK_API_URL", "DATABASE_URL",
                 "OPENAI_API_KEY", "OPENAI_BASE_URL", "WARROOM_LLM_MODEL", "WARROOM_PLAN",
                 "WARROOM_INGEST_TOKEN", "WARROOM_METRICS_TOKEN", "WARROOM_LOG_FORMAT", "PORT",
                 "WARROOM_FEED_ALLOW_HOSTS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_product_contract() -> None:
    settings = load_settings()
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.database_url == "sqlite:///warroom.db"
    assert settings.port == 3000
    assert settings.warroom_ingest_token is None
    assert settings.warroom_metrics_token is None
    assert settings.warroom_log_format == "text"
    assert not settings.socket_mode
    assert not settings.llm_configured
    assert settings.warroom_llm_model
    assert settings.feed_allow_hosts == frozenset()  # feeds reach public addresses only


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example.com:5432/app", "postgresql+psycopg://u:p@db.example.com:5432/app"),
        ("postgresql://u@localhost/app", "postgresql+psycopg://u@localhost/app"),
        ("postgresql+psycopg://u@localhost/app", "postgresql+psycopg://u@localhost/app"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_urls_are_normalised(given: str, expected: str) -> None:
    assert normalise_database_url(given) == expected


def test_heroku_database_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@h:5432/d")
    assert load_settings().database_url == "postgresql+psycopg://u:p@h:5432/d"


def test_slack_api_url_gets_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9000/api")
    assert load_settings().slack_api_url == "http://127.0.0.1:9000/api/"


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("PORT", "abc", "PORT:"),
        ("PORT", "70000", "PORT:"),
        ("SLACK_BOT_TOKEN", "xoxp-user-token", "SLACK_BOT_TOKEN: must be a bot token"),
        ("SLACK_APP_TOKEN", "xoxb-wrong", "SLACK_APP_TOKEN: must be an app-level token"),
        ("SLACK_API_URL", "slack.com/api", "SLACK_API_URL: must be an http(s) URL"),
        ("DATABASE_URL", "not a url", "DATABASE_URL: is not a database URL"),
        ("WARROOM_FEED_ALLOW_HOSTS", "localhost:8080", "WARROOM_FEED_ALLOW_HOSTS: 'localhost:8080' is not an ip:port"),
        ("WARROOM_FEED_ALLOW_HOSTS", "127.0.0.1", "WARROOM_FEED_ALLOW_HOSTS: '127.0.0.1' is not an ip:port"),
        ("WARROOM_LOG_FORMAT", "xml", "WARROOM_LOG_FORMAT: Input should be 'text' or 'json'"),
    ],
)
def test_malformed_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


DATABASE_PASSWORD = "Pw0rdXyz"
FORM = "expected dialect://user:password@host:port/database, e.g. postgresql://… or sqlite:///warroom.db"
ENCODE = "percent-encode @ : / in the password (%40 %3A %2F)"
# Malformed DATABASE_URLs, each holding the password (or what would be, had it been encoded), and the
# one line that says so.
MALFORMED_DATABASE_URLS = [
    (f"user:{DATABASE_PASSWORD}@db.example.com/app", f"is not a database URL; {FORM}"),
    (f"postgresql://user:{DATABASE_PASSWORD}@db.example.com:notaport/app", f"the port is not a number; {ENCODE}"),
    # An unencoded @ in the password: the rest of it is read as the port, or as the host.
    (f"postgres://user:pass@word:{DATABASE_PASSWORD}@db.example.com:5432/app",
     f"the port is not a number; {ENCODE}"),
    (f"postgres://user:pass@{DATABASE_PASSWORD}@db.example.com/app", f"the host holds an @; {ENCODE}"),
    (f"nosuchdb://user:{DATABASE_PASSWORD}@db.example.com/app", f"no database driver nosuchdb; {FORM}"),
    (f"mysql://user:{DATABASE_PASSWORD}@db.example.com/app",
     "the database driver for mysql is not installed (no module MySQLdb)"),
]


@pytest.mark.parametrize(("value", "problem"), MALFORMED_DATABASE_URLS,
                         ids=[str(i) for i in range(len(MALFORMED_DATABASE_URLS))])
def test_malformed_database_url_never_shows_the_password(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"DATABASE_URL: {problem}"
    with pytest.raises(ValidationError) as raw:  # pydantic's own error, should anything print it
        Settings(database_url=value)
    assert DATABASE_PASSWORD not in str(raw.value) and DATABASE_PASSWORD not in repr(raw.value)


def test_feed_allowance_is_exact_ip_port_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARROOM_FEED_ALLOW_HOSTS", "127.0.0.1:8080, [::1]:9000")
    assert load_settings().feed_allow_hosts == {("127.0.0.1", 8080), ("::1", 9000)}


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("WARROOM_INGEST_TOKEN", "ingest-secret")
    monkeypatch.setenv("DATABASE_URL", f"postgres://user:{DATABASE_PASSWORD}@db.example.com/app")
    monkeypatch.setenv("WARROOM_METRICS_TOKEN", "metrics-secret")
    shown = repr(load_settings())
    assert "very-secret" not in shown and "ingest-secret" not in shown and DATABASE_PASSWORD not in shown
    assert "metrics-secret" not in shown


def test_log_format_is_read_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Logging is set up before a command reads the rest, and a bad unrelated variable does not stop it."""
    monkeypatch.setenv("WARROOM_LOG_FORMAT", " JSON ")
    monkeypatch.setenv("PORT", "eighty")
    assert load_log_settings().warroom_log_format == "json"


def test_require_names_the_missing_variable() -> None:
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN is not set"):
        Settings().require("slack_bot_token")
