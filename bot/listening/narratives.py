"""Narratives: the few stories an incident's mentions tell in a window, found with scikit-learn.

How a window is grouped (`group_narratives`, pure: plain posts in, plain values out):

1. **Normalise and dedupe.** Lower-case, drop URLs, @handles and a leading "RT", squeeze spaces.
   Posts with the same normalised text (retweets, copy-paste campaigns) become one document that
   remembers how many posts it stands for: every post counts towards volume, negatives and reach,
   but a text posted 500 times is fitted with weight 1 + ln(500) ≈ 7, not 500, so it cannot drag a
   centroid or own the labels.
2. **TF-IDF** (`TfidfVectorizer`, sublinear tf, l2) over words of ≥ 3 letters that are not stop
   words and not the brand's or playbook's keywords, lightly stemmed (`word_stem`: "boycotting" and
   "boycotts" are "boycott"), kept when they occur in ≥ 2 distinct texts.
3. **Over-cluster, drop the noise, merge.** `MiniBatchKMeans` (fixed seed, fitted with those
   weights) cuts the texts into fine clusters (about one per `TEXTS_PER_CLUSTER` distinct texts, at
   most `MAX_CLUSTERS`). A fine cluster whose texts do not sit near its centroid (mean cosine <
   `MIN_COHESION`) is chatter and goes to "other". `AgglomerativeClustering` (average linkage,
   cosine) then merges the coherent ones whose centroids are closer than `MERGE_DISTANCE`: the same
   story told with different words ("boycott … sweatshop", "boycott … pay workers fairly") ends up
   as one. No k to guess, and the quadratic step runs on ≤ 100 centroids, never on 20,000 posts.
4. **Keep the big ones.** A merged group is a narrative when it holds ≥ `MIN_POSTS` posts and ≥
   `MIN_SHARE` of the window and is still coherent; the `MAX_NARRATIVES` largest by volume are
   kept, and leftover texts whose cosine to a kept centre is ≥ `MIN_COHESION` join the nearest
   one (a story's post that fell into a noisy fine cluster). Everything else (and texts with no
   kept word) is "other".
5. **Describe each one.** Label: the 3 terms whose mean TF-IDF weight in the group most exceeds
   their weight in the whole window (distinct texts, unweighted), each shown as its most written
   form. Share of the window's posts,
   negative share, reach (followers summed over distinct authors), 2–3 examples (the most
   influential posts among the texts closest to the centroid, one per distinct text), trend: the
   previous window's texts are assigned to the same centroids (cosine ≥ `MIN_COHESION`) and
   compared — `new` (< 2 before), `rising` ((now + 1) / (before + 1) ≥ 1.5), `falling` (≤ 1 / 1.5),
   else `steady`.
6. **Rumours.** A tracked rumour is carried by the narrative with the most posts matching it (the
   same rule as the digest's rumour matches: ≥ two-thirds of the claim's significant words), when
   at least `MIN_RUMOUR_POSTS` do.

Deterministic: fixed seeds, documents in a fixed order (first seen, by post id), ties broken by text.
Windows larger than `SAMPLE_CAP` posts are sampled deterministically (every k-th mention id) and the
result says so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from scipy import sparse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.crisis.plan import Plan
from bot.listening.mentions import (
    STOP_WORDS,
    incident_window,
    influence,
    significant_words,
    words_of,
)
from models import Mention, Rumour
from models.incidents import RUMOUR_OPEN

MAX_NARRATIVES = 5
MAX_CLUSTERS = 100
TEXTS_PER_CLUSTER = 8  # fine clusters ≈ distinct texts / 8, at most MAX_CLUSTERS
MERGE_DISTANCE = 0.9  # average cosine distance between fine centroids under which they are one story
MIN_COHESION = 0.3
MIN_POSTS = 3
MIN_SHARE = 0.02
MIN_RUMOUR_POSTS = 2
LABEL_TERMS = 3
EXAMPLES = 3
SAMPLE_CAP = 20_000
RISING = 1.5
SEED = 0
NOT_ENOUGH = "not enough posts to group"
_STRIP = re.compile(r"https?://\S+|www\.\S+|[@＠]\w+|&amp;|&quot;|&lt;|&gt;|&#\d+;", re.IGNORECASE)
_RT = re.compile(r"^(rt\s*:?\s*)+", re.IGNORECASE)


@dataclass(frozen=True)
class Post:
    """What grouping needs of one mention (its text is untrusted)."""

    mention_id: int
    text: str
    sentiment: str = "neutral"
    author: str | None = None
    platform: str = ""
    followers: int = 0
    engagement: int = 0
    url: str | None = None


@dataclass
class Example:
    mention_id: int
    author: str | None
    platform: str
    followers: int
    text: str
    url: str | None
    sentiment: str


@dataclass
class Narrative:
    label: str
    terms: list[str]
    posts: int
    share: float
    previous: int
    trend: str
    negative_share: float
    reach: int
    examples: list[Example] = field(default_factory=list)
    title: str | None = None  # the LLM's one-line title, when one was written
    rumours: list[str] = field(default_factory=list)  # claims of tracked rumours this narrative carries

    @property
    def heading(self) -> str:
        """The title when the LLM wrote one, else the term label."""
        return self.title or self.label


@dataclass
class NarrativeSet:
    """The window's narratives, the rest as "other", and how the window was read."""

    posts: int  # posts grouped (the sample, when sampled)
    window_posts: int  # posts in the window
    narratives: list[Narrative] = field(default_factory=list)
    other_posts: int = 0
    note: str = ""  # NOT_ENOUGH, or empty
    titled_by: str | None = None  # the model that wrote titles, when one did
    title_error: str | None = None

    @property
    def sampled(self) -> bool:
        return self.posts < self.window_posts

    @property
    def other_share(self) -> float:
        return self.other_posts / self.posts if self.posts else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> NarrativeSet:
        narratives = [
            Narrative(**{**item, "examples": [Example(**example) for example in item.get("examples", [])]})
            for item in data.get("narratives", [])
        ]
        return NarrativeSet(**{**data, "narratives": narratives})


@dataclass
class NarrativeLine:
    """One narrative in a line, as spike alerts, catch-ups and stakeholder updates show it. The label is
    made of words people posted: untrusted text, escaped or fenced wherever it is shown."""

    label: str
    posts: int
    share: float
    trend: str
    negative_share: float

    def text(self) -> str:
        return (f"{self.label} — {self.posts} posts ({self.share:.0%}), {self.trend}, "
                f"{self.negative_share:.0%} negative")


def narrative_lines(result: NarrativeSet, limit: int = 3) -> list[NarrativeLine]:
    """The top `limit` narratives of `result` as lines."""
    return [NarrativeLine(n.heading, n.posts, round(n.share, 3), n.trend, round(n.negative_share, 3))
            for n in result.narratives[:limit]]


def normalise(text: str) -> str:
    """The text as compared for duplicates: no URLs, handles or leading RT; lower-case; single spaces."""
    return " ".join(_RT.sub("", _STRIP.sub(" ", text).strip()).lower().split())


def claim_matches(text: str, words: Sequence[str]) -> bool:
    """The digest's rumour rule: the text holds at least two-thirds (rounded up) of the claim's words."""
    if not words:
        return False
    lowered = text.lower()
    return sum(word in lowered for word in words) >= math.ceil(len(words) * 2 / 3)


def word_stem(word: str) -> str:
    """A light suffix strip so "boycotting", "boycotted" and "boycotts" count as one word, and "price",
    "prices" and "priced" as another (English only; labels show the written form, never the stem)."""
    stem = word
    if word.endswith(("ies", "ied")) and len(word) > 4:
        stem = word[:-3] + "y"
    elif word.endswith("ings") and len(word) >= 7:
        stem = word[:-4]
    elif word.endswith("ing") and len(word) >= 6:
        stem = word[:-3]
    elif word.endswith("ed") and len(word) >= 5:
        stem = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) >= 4:
        stem = word[:-1]
    return stem[:-1] if stem.endswith("e") and len(stem) > 3 else stem


def _shown(stem_of: dict[str, str | None], written: Counter[str], stem: str) -> str:
    forms = [word for word, found in stem_of.items() if found == stem]
    return min(forms, key=lambda word: (-written[word], word)) if forms else stem


def _trend(now: int, before: int) -> str:
    if before < 2:
        return "new" if now >= MIN_POSTS else "steady"
    ratio = (now + 1) / (before + 1)
    return "rising" if ratio >= RISING else "falling" if ratio <= 1 / RISING else "steady"


def _reach(members: Sequence[Post]) -> int:
    by_author: dict[tuple[str, str], int] = {}
    anonymous = 0
    for post in members:
        if post.author:
            key = (post.platform, post.author)
            by_author[key] = max(by_author.get(key, 0), post.followers)
        else:
            anonymous += post.followers
    return sum(by_author.values()) + anonymous


def group_narratives(posts: Sequence[Post], *, excluded_words: set[str] | frozenset[str] = frozenset(),
                     previous_texts: Sequence[str] = (), previous_weight: float = 1.0,
                     rumours: Sequence[tuple[str, Sequence[str]]] = (),
                     window_posts: int | None = None) -> NarrativeSet:
    """Group a window's posts into its top narratives (see the module docstring).

    `excluded_words`: the brand's and playbook's keyword words, never a label. `rumours`: (claim,
    significant words) of the incident's tracked rumours. `window_posts`: the window's size when
    `posts` is a sample of it; `previous_weight`: what one previous text counts for (the previous
    window's sampling rate over this one's).
    """
    from sklearn.cluster import AgglomerativeClustering, MiniBatchKMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    total = window_posts if window_posts is not None else len(posts)
    result = NarrativeSet(posts=len(posts), window_posts=max(total, len(posts)))
    # 1. distinct texts, in a fixed order, each with the posts it stands for
    groups: dict[str, list[int]] = {}
    for position in sorted(range(len(posts)), key=lambda i: posts[i].mention_id):
        groups.setdefault(normalise(posts[position].text), []).append(position)
    texts = list(groups)
    members = list(groups.values())
    excluded = set(STOP_WORDS) | set(excluded_words)

    stem_of: dict[str, str | None] = {}  # word → its stem, None when it is never a term
    written: Counter[str] = Counter()  # how often each word was written (a label shows the commonest form)

    def analyse(text: str) -> list[str]:
        words = words_of(text)
        written.update(words)
        stems = []
        for word in words:
            if word not in stem_of:
                stem = word_stem(word) if len(word) >= 3 and word not in excluded else None
                stem_of[word] = stem if stem not in excluded else None
            found = stem_of[word]
            if found is not None:
                stems.append(found)
        return stems

    vectorizer = TfidfVectorizer(analyzer=analyse, min_df=2, sublinear_tf=True, dtype=np.float32)
    try:
        matrix = vectorizer.fit_transform(texts) if len(texts) >= 2 else None
    except ValueError:  # no word occurs in two distinct texts
        matrix = None
    if matrix is None or len(posts) < MIN_POSTS:
        result.note = NOT_ENOUGH
        result.other_posts = len(posts)
        return result
    matrix = sparse.csr_matrix(matrix)
    counts = np.array([len(m) for m in members], dtype=np.float64)
    has_words = np.asarray(matrix.getnnz(axis=1) > 0)
    rows = np.flatnonzero(has_words)
    if len(rows) < 2:
        result.note = NOT_ENOUGH
        result.other_posts = len(posts)
        return result

    # 2–3. fine clusters, merged into stories
    fitted = matrix[rows]
    fine_count = int(min(MAX_CLUSTERS, max(2, math.ceil(len(rows) / TEXTS_PER_CLUSTER)), len(rows)))
    kmeans = MiniBatchKMeans(n_clusters=fine_count, random_state=SEED, n_init=1, init="random", batch_size=2048,
                             max_no_improvement=5, reassignment_ratio=0.0)
    fine = kmeans.fit_predict(fitted, sample_weight=1.0 + np.log(counts[rows]))
    # Fine clusters whose texts do not sit together are noise ("other"); only coherent ones merge.
    fine_centres, fine_cohesion, fine_size = _centres(fitted, fine, fine_count)
    coherent = [label for label in range(fine_count)
                if fine_size[label] and fine_cohesion[label] >= MIN_COHESION]
    story = np.full(len(rows), -1)
    if len(coherent) >= 2:
        merger = AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                         distance_threshold=MERGE_DISTANCE)
        merged = merger.fit_predict(fine_centres[coherent])
        story_of_fine = np.full(fine_count, -1)
        story_of_fine[coherent] = merged
        story = story_of_fine[fine]
    elif coherent:
        story[fine == coherent[0]] = 0

    # 4. coherent, large enough stories, largest first
    global_mean = np.asarray(fitted.mean(axis=0)).ravel()
    vocabulary = vectorizer.get_feature_names_out()
    candidates = []
    in_story = np.flatnonzero(story >= 0)
    if len(in_story):
        story_count = int(story.max()) + 1
        centres, cohesion, _ = _centres(fitted[in_story], story[in_story], story_count)
        weights = np.bincount(story[in_story], weights=counts[rows[in_story]], minlength=story_count)
        for story_id in range(story_count):
            local = in_story[story[in_story] == story_id]
            if (not len(local) or weights[story_id] < max(MIN_POSTS, MIN_SHARE * len(posts))
                    or cohesion[story_id] < MIN_COHESION):
                continue
            similarity = np.asarray(fitted[local] @ centres[story_id]).ravel()
            candidates.append((-float(weights[story_id]), texts[rows[local[0]]], local, centres[story_id],
                               similarity))
    candidates.sort(key=lambda item: (item[0], item[1]))
    kept = _sweep(candidates[:MAX_NARRATIVES], fitted, counts[rows])

    previous_assigned = [round(count * previous_weight)
                         for count in _assign_previous(vectorizer, previous_texts, [c[3] for c in kept])]
    grouped = 0
    for index, (negative_weight, _, local, centre, similarity) in enumerate(kept):
        post_indexes = [p for doc in rows[local] for p in members[doc]]
        story_posts = [posts[p] for p in post_indexes]
        weight = int(-negative_weight)
        grouped += weight
        distinct = centre - global_mean
        if not (distinct > 1e-9).any():  # the story is the whole window: its own commonest terms label it
            distinct = centre
        order = np.argsort(-distinct, kind="stable")
        # A label shows each stem as the word people wrote most often ("prices", not "price").
        terms = [_shown(stem_of, written, str(vocabulary[i])) for i in order[:LABEL_TERMS] if distinct[i] > 0]
        negatives = sum(post.sentiment == "negative" for post in story_posts)
        result.narratives.append(Narrative(
            label=" · ".join(terms) or "(no distinctive words)", terms=terms, posts=weight,
            share=round(weight / len(posts), 4), previous=previous_assigned[index],
            trend=_trend(weight, previous_assigned[index]),
            negative_share=round(negatives / weight, 4), reach=_reach(story_posts),
            examples=_examples(posts, members, rows[local], similarity),
        ))
    result.other_posts = len(posts) - grouped
    _match_rumours(result, kept, rows, members, posts, rumours)
    if not result.narratives:
        result.note = NOT_ENOUGH if len(posts) < 2 * MIN_POSTS else ""
    return result


def _centres(matrix: Any, labels: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per label: the unit centroid of its rows, their mean cosine to it (cohesion), and how many rows.

    Vectorised (one sparse product, one bincount) because a loop of sparse row selections cost more
    than the clustering itself on small windows."""
    rows = matrix.shape[0]
    indicator = sparse.csr_matrix((np.ones(rows), (labels, np.arange(rows))), shape=(count, rows))
    sums = np.asarray((indicator @ matrix).todense())
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    centres = sums / np.where(norms == 0, 1.0, norms)
    coo = matrix.tocoo()
    closeness = np.bincount(coo.row, weights=coo.data * centres[labels[coo.row], coo.col], minlength=rows)
    size = np.bincount(labels, minlength=count)
    cohesion = np.bincount(labels, weights=closeness, minlength=count) / np.maximum(size, 1)
    return centres, cohesion, size


def _sweep(kept: list[Any], fitted: Any, weights: np.ndarray) -> list[Any]:
    """Give each narrative the leftover texts that sit near its centre (cosine ≥ MIN_COHESION): a story's
    post can land in a noisy fine cluster and would otherwise be lost to "other"."""
    if not kept:
        return kept
    taken = np.zeros(fitted.shape[0], dtype=bool)
    for _, _, local, _, _ in kept:
        taken[local] = True
    leftover = np.flatnonzero(~taken)
    similarity = np.asarray(fitted[leftover] @ np.vstack([item[3] for item in kept]).T) if len(leftover) else None
    swept = []
    for column, (_, first, local, centre, _) in enumerate(kept):
        joined = local
        if similarity is not None:
            best = similarity.argmax(axis=1)
            near = (best == column) & (similarity[:, column] >= MIN_COHESION)
            joined = np.sort(np.concatenate([local, leftover[near]]))
        closeness = np.asarray(fitted[joined] @ centre).ravel()
        swept.append((-float(weights[joined].sum()), first, joined, centre, closeness))
    swept.sort(key=lambda item: (item[0], item[1]))
    return swept


def _assign_previous(vectorizer: Any, texts: Sequence[str], centres: list[np.ndarray]) -> list[int]:
    """How many of the previous window's posts sit with each narrative (nearest centre, cosine ≥ MIN_COHESION)."""
    counts = [0] * len(centres)
    if not texts or not centres:
        return counts
    vectors = vectorizer.transform([normalise(text) for text in texts])
    similarity = np.asarray(vectors @ np.vstack(centres).T)
    best = similarity.argmax(axis=1)
    for row, column in enumerate(best):
        if similarity[row, column] >= MIN_COHESION:
            counts[int(column)] += 1
    return counts


def _examples(posts: Sequence[Post], members: list[list[int]], docs: np.ndarray,
              similarity: np.ndarray) -> list[Example]:
    """The most influential posts among the texts nearest the centre (upper half), one per distinct text."""
    threshold = float(np.median(similarity))
    close = [doc for doc, sim in zip(docs.tolist(), similarity.tolist(), strict=True) if sim >= threshold]

    def best_post(doc: int) -> Post:
        return max((posts[p] for p in members[doc]),
                   key=lambda post: (influence(post.followers, post.engagement), -post.mention_id))

    ranked = sorted((best_post(doc) for doc in close),
                    key=lambda post: (-influence(post.followers, post.engagement), post.mention_id))
    return [Example(post.mention_id, post.author, post.platform, post.followers, post.text, post.url,
                    post.sentiment) for post in ranked[:EXAMPLES]]


def _match_rumours(result: NarrativeSet, kept: list[Any], rows: np.ndarray, members: list[list[int]],
                   posts: Sequence[Post], rumours: Sequence[tuple[str, Sequence[str]]]) -> None:
    for claim, words in rumours:
        hits = []
        for _, _, local, _, _ in kept:
            hits.append(sum(claim_matches(posts[p].text, words) for doc in rows[local] for p in members[doc]))
        if hits and max(hits) >= MIN_RUMOUR_POSTS:
            result.narratives[int(np.argmax(hits))].rumours.append(claim)


def sample_stride(window_posts: int, cap: int = SAMPLE_CAP) -> int:
    """Every how many mention ids to take so a window of `window_posts` fits in `cap` (1: take all)."""
    return 1 if window_posts <= cap else math.ceil(window_posts / cap)


# ---- reading a window from the database ----------------------------------------------------------


def _window_posts(session: Session, where: Any, cap: int) -> tuple[list[Post], int]:
    """The posts matching `where` (every k-th mention id when more than `cap`), and how many match."""
    total = int(session.scalar(select(func.count()).select_from(Mention).where(where)) or 0)
    stride = sample_stride(total, cap)
    query = select(Mention.id, Mention.text, Mention.sentiment_label, Mention.author, Mention.platform,
                   Mention.author_followers, Mention.likes + Mention.shares + Mention.replies, Mention.url)
    query = query.where(where)
    if stride > 1:
        query = query.where(Mention.id % stride == 0)
    rows = session.execute(query.order_by(Mention.id).limit(cap)).all()
    posts = [Post(int(mention_id), text, sentiment, author, platform, int(followers or 0), int(engagement or 0), url)
             for mention_id, text, sentiment, author, platform, followers, engagement, url in rows]
    return posts, total


def window_narratives(session: Session, in_window: Any, previous_window: Any, keywords: Sequence[str],
                      rumours: Sequence[tuple[str, Sequence[str]]], cap: int = SAMPLE_CAP) -> NarrativeSet:
    """The narratives of the mentions matching `in_window`, trends against `previous_window`."""
    posts, total = _window_posts(session, in_window, cap)
    before, before_total = _window_posts(session, previous_window, cap // 4)
    # Trends compare whole windows: scale the previous sample's counts to this sample's rate.
    rate_now = total / len(posts) if posts else 1.0
    rate_before = before_total / len(before) if before else 1.0
    excluded = {word for keyword in keywords for word in words_of(keyword)}
    return group_narratives(posts, excluded_words=excluded, previous_texts=[post.text for post in before],
                            previous_weight=rate_before / rate_now, rumours=rumours, window_posts=total)


def incident_narratives(session: Session, plan: Plan, incident_id: int, window_end: datetime,
                        window_minutes: int | None = None) -> tuple[NarrativeSet, int]:
    """`/crisis narratives`: the incident's narratives in the severity's window ending at `window_end`,
    and that window's length in minutes."""
    window = incident_window(session, plan, incident_id, window_end, window_minutes)
    claims = session.scalars(
        select(Rumour.claim).where(Rumour.incident_id == incident_id, Rumour.status == RUMOUR_OPEN)
        .order_by(Rumour.id)
    ).all()
    rumours = [(claim, significant_words(claim, plan.brand.keywords)) for claim in claims]
    narratives = window_narratives(session, window.current, window.previous, window.scope.keywords, rumours)
    return narratives, window.minutes
