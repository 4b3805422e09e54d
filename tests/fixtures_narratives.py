"""Real background posts from the labelled sets (../shared/data) and three injected stories.

The background is a real, timestamped window of the Apple set (tweets matching #AAPL or @Apple, 4
December 2014, 20:00–22:00 UTC: stock talk, retweet storms, product chatter). The three stories are
written for the test, each with varied wording (different openings, verbs and tails), so grouping has
to find what the posts share rather than match one sentence.
"""

from __future__ import annotations

import csv
import itertools
import os
import random
from datetime import datetime
from pathlib import Path

DATA_DIR = Path(os.environ.get("WARROOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
APPLE_SET = "apple_twitter_sentiment_dfe.csv"
BACKGROUND_START = datetime.fromisoformat("2014-12-04T20:00:00+00:00")
BACKGROUND_END = datetime.fromisoformat("2014-12-04T22:00:00+00:00")

ILLNESS = (
    ["my son got sick", "I felt really ill", "my whole family is sick", "got food poisoning",
     "ended up vomiting all night", "my daughter was nauseous", "I was sick for two days",
     "horrible stomach cramps and nausea", "we all got ill"],
    ["after eating at the apple cafe", "from the apple cafe sandwiches", "after lunch at the apple campus cafe",
     "after the cafe salad at apple"],
    ["", " #foodpoisoning", " never again", " is anyone else sick?", " hospital visit tonight"],
)
BOYCOTT = (
    ["boycott apple", "time to boycott apple", "we should all boycott apple", "join the boycott of apple",
     "I am boycotting apple", "everyone boycott apple products", "boycott apple now"],
    ["until they pay their workers fairly", "over the factory worker abuse", "for the sweatshop conditions",
     "because of how factory workers are treated"],
    ["", " #boycottapple", " spread the word", " do not buy", " share this"],
)
PRICE = (
    ["apple raised the price", "apple hiked prices", "the new price hike from apple",
     "apple just increased prices", "prices went up again at apple", "apple price increase",
     "another apple price rise"],
    ["of the macbook by 200 dollars", "on every macbook and ipad", "of macbook pro models overnight",
     "for macbooks in the store"],
    ["", " ridiculous pricing", " too expensive now", " greedy", " cannot afford it"],
)
STORIES = {"illness": ILLNESS, "boycott": BOYCOTT, "price": PRICE}
STORY_WORDS = {"illness": ("sick", "ill", "nause", "vomit", "poison", "cramps"),
               "boycott": ("boycott",), "price": ("price", "hike", "increase", "expensive", "pricing")}


def story_posts(name: str, count: int = 30, seed: int = 7) -> list[str]:
    """`count` distinct, varied posts of one story."""
    openings, middles, tails = STORIES[name]
    combos = list(itertools.product(openings, middles, tails))
    random.Random(f"{seed}-{name}").shuffle(combos)
    return [f"{a} {b}{c}".strip() for a, b, c in combos[:count]]


def background_rows() -> list[dict[str, str]]:
    """The real background window: rows of the Apple set posted in [BACKGROUND_START, BACKGROUND_END)."""
    with open(DATA_DIR / APPLE_SET, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row for row in rows if row["created_at"]
            and BACKGROUND_START <= datetime.fromisoformat(row["created_at"]) < BACKGROUND_END]
