"""The `/crisis` text parser: subcommand splitting and user references (pure functions)."""

from __future__ import annotations

import pytest

from bot.crisis.commands import ParsedCommand, form_of, parse_command, parse_user_ref


@pytest.mark.parametrize("text", ["", "   ", "\t\n", "\u00a0", None])
def test_empty_text_is_no_subcommand(text: str | None) -> None:
    assert parse_command(text) == ParsedCommand("", "")  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "expected"), [
    ("help", ParsedCommand("help", "")),
    ("  HELP  ", ParsedCommand("help", "")),
    ("Open sev1 Rumour about the recall", ParsedCommand("open", "sev1 Rumour about the recall")),
    ("DRAFT x Reply to <@U0123ABCD>", ParsedCommand("draft", "x Reply to <@U0123ABCD>")),
])
def test_the_subcommand_is_lower_cased_and_the_rest_kept(text: str, expected: ParsedCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize("separator", [" ", "\t", "\n", "\r\n", "\u00a0", "\u2003", "\u3000", " \t\u00a0 "])
def test_any_whitespace_separates_the_subcommand(separator: str) -> None:
    assert parse_command(f"open{separator}Title here") == ParsedCommand("open", "Title here")


def test_no_break_space_after_the_subcommand_is_not_part_of_its_name() -> None:
    # Slack clients send U+00A0 when someone types a space after an autocompleted word.
    assert parse_command("fact\u00a0Recall covers batch 12\u00a0") == ParsedCommand("fact", "Recall covers batch 12")


def test_inner_whitespace_and_newlines_of_the_arguments_are_kept() -> None:
    parsed = parse_command("status\nLine one\n\nLine  two\t\n")
    assert parsed == ParsedCommand("status", "Line one\n\nLine  two")


def test_a_newline_right_after_the_subcommand_then_more_words() -> None:
    assert parse_command("decide\n  Pause ads\tuntil Monday ") == ParsedCommand("decide", "Pause ads\tuntil Monday")


def test_zero_width_space_is_not_whitespace() -> None:
    # U+200B is not a separator (str.split agrees): the word stays one unknown subcommand.
    assert parse_command("open\u200bTitle").name == "open\u200btitle"


@pytest.mark.parametrize(("token", "user_id"), [
    ("<@U123>", "U123"),
    ("<@U0123ABCD>", "U0123ABCD"),
    ("<@W0123ABCD>", "W0123ABCD"),
    ("<@U123|lena>", "U123"),
    ("<@U123|Lena Lead>", "U123"),
    ("<@U123|>", "U123"),
    ("U123", "U123"),
    ("  U0123ABCD\t", "U0123ABCD"),
    ("\u00a0<@U123>\u00a0", "U123"),
])
def test_parse_user_ref_reads_every_form(token: str, user_id: str) -> None:
    assert parse_user_ref(token) == user_id


@pytest.mark.parametrize("token", [
    "", " ", "@lena", "lena", "<@lena>", "<@u123>", "u123", "U1", "<@U1>", "<#C0123ABCD>", "C0123ABCD",
    "<!channel>", "<!subteam^S0123|@comms>", "<@U123", "@U123>", "<@U123> extra", "U123 U456", "<@U12-3>",
    "<@U123|a|b>x", "<@U123|x>>",
])
def test_parse_user_ref_refuses_junk(token: str) -> None:
    assert parse_user_ref(token) is None


def test_form_of_names_the_correct_form() -> None:
    assert form_of("assign") == "/crisis assign <role> @user"
    assert form_of("roles") == "/crisis roles"
    assert form_of("nonsense") == "/crisis help"
