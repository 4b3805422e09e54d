"""The Slack app manifest asks for the bot scopes the code uses, and no more (least privilege)."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml
from slack_sdk import WebClient
from slack_sdk.web.base_client import BaseClient

ROOT = Path(__file__).resolve().parents[1]

# Every Web API method War Room calls, and the bot-token scopes Slack's method reference lists for it
# (docs.slack.dev/reference/methods/<method>) for the conversations we use it on.
METHOD_SCOPES: dict[str, set[str]] = {
    "auth_test": set(),
    "chat_getPermalink": set(),
    # Posting to a user id opens the App Home DM with chat:write alone ("Begin a conversation in a
    # user's App Home"): the role welcome and the open-incident modal's answers need no im:write.
    "chat_postMessage": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "chat_update": {"chat:write"},
    # Incident channels are public (channels:*) or private (groups:*), as the plan says.
    "conversations_create": {"channels:manage", "groups:write"},
    "conversations_invite": {"channels:manage", "groups:write"},
    "conversations_setTopic": {"channels:manage", "groups:write"},
    "conversations_setPurpose": {"channels:manage", "groups:write"},
    "conversations_archive": {"channels:manage", "groups:write"},  # channel.archive_after_days
    "conversations_list": {"channels:read", "groups:read"},  # types=public_channel,private_channel
    "conversations_join": {"channels:join"},  # public channels only: a private one must invite the bot
    "conversations_history": {"channels:history", "groups:history"},  # the stakeholder channel, either kind
    "files_upload_v2": {"files:write"},  # files.getUploadURLExternal + files.completeUploadExternal
    "pins_add": {"pins:write"},
    "usergroups_users_list": {"usergroups:read"},
    "users_info": {"users:read"},
    "views_open": set(),
    "views_publish": set(),
}
# Scopes no Web API call needs but a feature does.
FEATURE_SCOPES = {
    "commands": "the /crisis slash command and the message shortcut",
    "chat:write.public": "spike alerts in a public alert channel the bot has not joined",
}


def _web_api_calls() -> set[str]:
    """Names of WebClient methods used anywhere in the app's code."""
    methods = set(dir(WebClient)) - set(dir(BaseClient))
    used: set[str] = set()
    for folder in ("bot", "handlers", "models"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "slack_emulator.py":
                continue  # serves the API; calls none of it
            used |= {node.attr for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                     if isinstance(node, ast.Attribute) and node.attr in methods}
    return used


def test_every_web_api_call_has_its_scopes_listed() -> None:
    assert _web_api_calls() == set(METHOD_SCOPES)


def test_manifest_asks_for_exactly_the_scopes_the_calls_need() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text(encoding="utf-8"))
    asked = set(manifest["oauth_config"]["scopes"]["bot"])
    needed = set().union(*METHOD_SCOPES.values()) | set(FEATURE_SCOPES)
    assert sorted(asked - needed) == [], "scopes nothing uses"
    assert sorted(needed - asked) == [], "scopes a call needs"
