"""Narratives for 20,000 mentions on one core: `group_narratives` time (target ≤ 2 s).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 python bench/narratives.py [--posts 20000]

The window is built from real posts: all 16,164 posts of the three labelled sets in
../shared/data (retweet storms and duplicates included), topped up with the three varied injected
stories of the quality test (illness, boycott, price) repeated to reach --posts, with random reach and
sentiment. The previous window is 5,000 of the same posts. Prints the median of --runs runs (after one
warm-up run that pays sklearn's import) and what the narratives were, so a slow run can be judged
against what it found. Pinning to one core (taskset) and one BLAS thread measures "one core".
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import time
from pathlib import Path

from bot.listening.narratives import Post, group_narratives
from tests.fixtures_narratives import DATA_DIR, STORIES, story_posts

SETS = ("apple_twitter_sentiment_dfe.csv", "sanders_twitter_sentiment.csv", "sxsw_brand_product_emotions.csv")


def window(count: int, seed: int = 1) -> list[Post]:
    rng = random.Random(seed)
    texts: list[tuple[str, str]] = []
    for name in SETS:
        with open(Path(DATA_DIR) / name, encoding="utf-8", newline="") as handle:
            texts.extend((row["text"], row["label"]) for row in csv.DictReader(handle))
    stories = [(text, "negative") for story in STORIES for text in story_posts(story, 60)]
    while len(texts) < count:
        texts.extend(stories)
    rng.shuffle(texts)
    return [Post(mention_id=n, text=text, sentiment=label, author=f"user{rng.randint(1, 5000)}",
                 platform="twitter", followers=rng.choice([10, 300, 5000, 80_000]), engagement=rng.randint(0, 50))
            for n, (text, label) in enumerate(texts[:count])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    posts = window(args.posts)
    previous = [post.text for post in window(5000, seed=2)]
    keywords = {"apple", "aapl", "google", "microsoft", "twitter"}
    group_narratives(posts[:500], excluded_words=keywords)  # warm-up: imports
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = group_narratives(posts, excluded_words=keywords, previous_texts=previous)
        times.append(time.perf_counter() - started)
    print(f"{len(posts)} posts, previous window {len(previous)}: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)")
    for narrative in result.narratives:
        print(f"  {narrative.share:6.1%}  {narrative.trend:8}  {narrative.label}")
    print(f"  {result.other_share:6.1%}  other")


if __name__ == "__main__":
    main()
