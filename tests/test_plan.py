"""The crisis plan: the bundled example is valid, and every error names file, key path and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bot.crisis.plan import BUNDLED_PLAN, PlanError, load_plan, parse_plan, plan_path

ROOT = Path(__file__).resolve().parents[1]


def _example() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(BUNDLED_PLAN.read_text())


def test_bundled_example_is_the_top_level_file_and_valid() -> None:
    assert BUNDLED_PLAN.read_text() == (ROOT / "plan.example.yml").read_text()
    plan = load_plan(BUNDLED_PLAN)
    assert set(plan.roles) == {"lead", "monitor", "drafter", "approver", "liaison"}
    assert set(plan.severities) == {"sev1", "sev2", "sev3", "sev4"}
    assert plan.playbooks["outage"].holding_statement
    assert plan.digest_minutes("sev1") < plan.digest_minutes("sev4")


def test_every_key_of_the_schema_is_documented_in_the_example() -> None:
    text = BUNDLED_PLAN.read_text()
    for key in ("brand", "keywords", "timezone", "alert_channel", "feeds", "poll_minutes", "rss", "mastodon",
                "spike", "window_minutes", "baseline_windows", "min_count", "z_score", "ratio",
                "negative_share", "cooldown_minutes", "severities", "digest_minutes", "roles", "members",
                "usergroup", "signoff", "playbooks", "checklist", "holding_statement", "tone", "voice", "avoid",
                "sign_off", "channel", "prefix", "private", "mentions", "lookback_minutes", "drills", "file",
                "speed", "playbook", "title", "platform"):
        assert f"{key}:" in text, key


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["roles"]["lead"].update(membrs=[]), "plan.yml: roles.lead.membrs: unknown key"),
        (lambda d: d["roles"]["approver"].update(members=["bob"]), "roles.approver.members: "),
        (lambda d: d["severities"].pop("sev3"), "severities: missing sev3"),
        (lambda d: d["severities"]["sev1"].update(digest_minutes=1), "severities.sev1.digest_minutes:"),
        (lambda d: d.update(timezone="Mars/Olympus"), "timezone: 'Mars/Olympus' is not an IANA time zone"),
        (lambda d: d["playbooks"]["outage"].pop("holding_statement"),
         "playbooks.outage.holding_statement: required key is missing"),
        (lambda d: d["channel"].update(prefix="Crisis Room"), "channel.prefix:"),
        (lambda d: d["roles"].pop("lead"), "roles: a `lead` role is required"),
        (lambda d: d["roles"]["approver"].update(signoff=False), "roles: `approver` is always a sign-off role"),
        (lambda d: d["feeds"]["mastodon"][0].update(search="x"), "feeds.mastodon[0]: "),
        (lambda d: d.pop("brand"), "plan.yml: brand: required key is missing"),
        (lambda d: d["playbooks"]["outage"]["checklist"][1].update(owner="ceo"),
         "playbooks: playbook 'outage': checklist owner 'ceo' is not one of the plan's roles"),
        (lambda d: d["playbooks"]["outage"]["checklist"][1].update(due="soon"),
         "playbooks.outage.checklist[1].ChecklistItem.due: 'soon' is not a due time after the open"),
        (lambda d: d["playbooks"]["outage"]["checklist"][1].update(kind="tweet"),
         "playbooks.outage.checklist[1].ChecklistItem.kind:"),
        (lambda d: d["severities"]["sev2"].update(first_statement_minutes=0),
         "severities.sev2.first_statement_minutes:"),
        (lambda d: d["channel"].update(archive_after_days=0), "channel.archive_after_days:"),
    ],
)
def test_errors_name_file_key_path_and_problem(mutate, expected: str) -> None:  # type: ignore[no-untyped-def]
    data = _example()
    mutate(data)
    with pytest.raises(PlanError) as caught:
        parse_plan(yaml.safe_dump(data), source="plan.yml")
    assert expected in str(caught.value)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yml"
    bad.write_text("brand:\n  name: [unclosed\n")
    with pytest.raises(PlanError, match=r"plan.yml \(line \d+, column \d+\)"):
        load_plan(bad)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="nope.yml: cannot read the plan"):
        load_plan(tmp_path / "nope.yml")


def test_plan_path_prefers_setting_then_local_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert plan_path(None) == BUNDLED_PLAN
    (tmp_path / "plan.yml").write_text("x")
    assert plan_path(None) == Path("plan.yml")
    assert plan_path(Path("/etc/other.yml")) == Path("/etc/other.yml")
