"""The plan's publishing accounts and their credentials, which live only in the environment.

A secret is read from its variable when a call is made (so fixing a token needs no restart) and handed
straight to the platform's client: never logged, stored, exported or shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.crisis.plan import Plan, Publishing

PUBLISHABLE = ("mastodon", "bluesky")


@dataclass(frozen=True)
class Account:
    """A publishing account as War Room shows it: no secret, only the variable that holds it."""

    platform: str  # "mastodon" or "bluesky"
    label: str  # "@acmeair.bsky.social", "mastodon.social"
    env: str
    base_url: str
    handle: str | None = None

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        value = (os.environ if environ is None else environ).get(self.env, "").strip()
        return value or None


def account_for(publishing: Publishing, platform: str) -> Account | None:
    """The account the plan names for `platform`, or None (drafts for it are copied by hand)."""
    if platform == "mastodon" and publishing.mastodon is not None:
        instance = publishing.mastodon.instance.rstrip("/")
        return Account("mastodon", instance.split("://", 1)[-1], publishing.mastodon.token_env, instance)
    if platform == "bluesky" and publishing.bluesky is not None:
        bluesky = publishing.bluesky
        return Account("bluesky", f"@{bluesky.handle}", bluesky.password_env, bluesky.pds.rstrip("/"),
                       handle=bluesky.handle)
    return None


def describe_accounts(plan: Plan, environ: Mapping[str, str] | None = None) -> list[str]:
    """For `warroom plan check`: one line per platform, saying whether its variable is set (never its value)."""
    lines = []
    for platform in PUBLISHABLE:
        account = account_for(plan.publishing, platform)
        if account is None:
            lines.append(f"publishing {platform}: no account (approved {platform} replies are copied by hand)")
            continue
        state = "set" if account.secret(environ) else "NOT SET: publishing will be refused until it is"
        lines.append(f"publishing {platform}: {account.label}, credential in ${account.env} ({state})")
    return lines
