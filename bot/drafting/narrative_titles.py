"""One-line narrative titles written by the LLM (when one is configured), the posts fenced as data.

One structured-output call for all of a window's narratives (`prompts/narratives.md`). Any failure
(no key, timeout, refusal, the wrong number of titles) leaves the term labels in place and says why
in `NarrativeSet.title_error`; a digest is never held back by the model.
"""

from __future__ import annotations

import logging

import openai
from pydantic import BaseModel, Field

from bot.background.runtime import Runtime
from bot.drafting.llm import failure_reason, runtime_llm_client
from bot.drafting.prompts import defuse_markers, fence_post, fill_template, load_template
from bot.listening.narratives import NarrativeSet

log = logging.getLogger(__name__)

TEMPLATE = "narratives.md"
FIELDS = frozenset({"brand", "count", "groups"})
TITLE_CHARS = 120
EXAMPLE_CHARS = 400
TITLE_TIMEOUT_SECONDS = 15.0
POSTS_OPEN, POSTS_CLOSE = "<<<POSTS", "POSTS>>>"


class NarrativeTitles(BaseModel):
    """What the model must return (sent as a strict JSON schema)."""

    titles: list[str] = Field(description="One short neutral title per group, in the groups' order.")


def titles_prompt(brand: str, narratives: NarrativeSet) -> str:
    """The user message: every group's distinctive words and examples, inside one fence."""
    groups = []
    for number, narrative in enumerate(narratives.narratives, start=1):
        lines = [f"Group {number}: {narrative.share:.0%} of posts; distinctive words: "
                 + defuse_markers(", ".join(narrative.terms))]
        for example in narrative.examples:
            text = " ".join(fence_post(example.text).split())[:EXAMPLE_CHARS]
            lines.append(f"- {text}")
        groups.append("\n".join(lines))
    template = load_template(TEMPLATE)
    return fill_template(template, {"brand": brand, "count": len(groups), "groups": "\n\n".join(groups)},
                         TEMPLATE, FIELDS)


def clean_title(title: str) -> str:
    """One line, no control characters, at most TITLE_CHARS (escaped later, where it is shown)."""
    line = " ".join("".join(char if char.isprintable() else " " for char in title).split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def title_narratives(runtime: Runtime, narratives: NarrativeSet | None, brand: str) -> None:
    """Give each narrative the model's title; on any failure keep the term labels and note why."""
    if narratives is None or not narratives.narratives or runtime.settings.openai_api_key is None:
        return
    model = runtime.settings.warroom_llm_model
    client: openai.OpenAI | None = None
    try:
        # Shorter than a draft's wait: the digest waits for its titles.
        timeout = min(TITLE_TIMEOUT_SECONDS, float(runtime.extras.get("llm_timeout", TITLE_TIMEOUT_SECONDS)))
        client = runtime_llm_client(runtime).with_options(timeout=timeout, max_retries=1)
        completion = client.chat.completions.parse(
            model=model,
            messages=[{"role": "user", "content": titles_prompt(brand, narratives)}],
            response_format=NarrativeTitles,
        )
        parsed = completion.choices[0].message.parsed if completion.choices else None
        titles = [clean_title(title) for title in (parsed.titles if parsed else [])]
    except Exception as exc:  # every failure keeps the term labels
        narratives.title_error = failure_reason(exc, client)
        log.warning("narrative titles: %s", narratives.title_error)
        return
    if len(titles) != len(narratives.narratives) or not all(titles):
        count = len(narratives.narratives)
        narratives.title_error = f"the model gave {len(titles)} usable titles for {count} narratives"
        log.warning("narrative titles: %s", narratives.title_error)
        return
    for narrative, title in zip(narratives.narratives, titles, strict=True):
        narrative.title = title
    narratives.titled_by = completion.model or model
