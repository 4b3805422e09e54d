"""Sentiment of a brand mention: negative, neutral or positive, with a score in [-1, 1].

How it works
------------
Three layers, all offline (nothing is downloaded, ever):

1. **VADER's lexicon** (the word list shipped inside the ``vaderSentiment`` package, read once on
   first use), applied by a fast re-implementation of VADER's main rules: negation within three
   words, intensifiers ("very", "so"), ALL-CAPS emphasis, "but" shifting weight to the second half,
   exclamation marks, emoticons and emoji.
2. **Complaint and failure cues** that VADER does not see because they are facts, not feelings:
   failure words ("cancelled", "delayed", "crashed", "lost", "refund"...), negated function verbs
   ("won't turn on", "doesn't work", "can't log in"), "still no ...", "no reply/response/signal",
   waiting times ("2 hours", "on hold", "for 3 weeks"), "why ...?", "where is my ...", "again",
   "fix this", "need(s) to", "acting up", "is down", corporate trouble ("lawsuit", "recall",
   "boycott"), profanity and churn ("never again", "done with"), plus neutral cues (links, news
   and market words, cash tags, promotions, plain questions). A problem told as resolved
   ("sorted my issue in 5 minutes") does not count as a complaint.
3. A **multinomial logistic regression over 26 such features** (``sentiment_data/model.json``,
   2 KB, read lazily on first use) turns the evidence into probabilities. Class weights are
   balanced, with negatives weighted up further, because a missed complaint costs a crisis team
   more than a false alarm and a brand under fire sees far more negatives than any training set.

``score = P(positive) - P(negative)``; the label is the most probable class, so a negative label
always has a score below 0 and a positive label a score above 0 (a neutral one may lean either way).

Training data and overfitting
-----------------------------
The weights were fitted by ``bench/fit_sentiment.py`` on the Sanders corpus only (the one labelled
set whose labels are licensed for commercial use); its figures are 5-fold cross-validated, and the
extra weight on negatives is chosen by a fixed rule on Sanders alone (the smallest that reaches
0.80 cross-validated negative recall). The CrowdFlower Apple and SXSW sets were never fitted on
and serve as held-out sets; ``bench/sentiment.py`` measures all three against plain VADER.

Against overfitting: the word lists are general complaint and failure vocabulary for any consumer
brand (airlines, banks, telecoms, delivery, retail, software), written from domain knowledge, with
no brand, product or event name in them; a few general entries (corporate trouble, "help" as a
request, "shut down") were added after reading a sample of misses, never to make a given post
pass. The model learns one weight per *group* of cues, never a weight per word, so it cannot
memorise a topic or a brand: a per-word model fitted on Sanders learnt e.g. "lost", "waiting" and
"days" as signs of a *non*-negative post, which would wreck an airline's complaints, and was
rejected for that reason.

The functions are pure, deterministic and thread-safe: the lexicon and weights are loaded once
under a lock and only read afterwards.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

SentimentLabel = Literal["negative", "neutral", "positive"]
LABELS: tuple[SentimentLabel, SentimentLabel, SentimentLabel] = ("negative", "neutral", "positive")
MODEL_PATH = Path(__file__).with_name("sentiment_data") / "model.json"


@dataclass(frozen=True)
class Sentiment:
    """A mention's sentiment: its label and a score in [-1, 1] (below 0 leans negative)."""

    label: SentimentLabel
    score: float


# ---- vocabulary -------------------------------------------------------------------------------
# Each word carries bit flags for the cue groups it belongs to; one dict lookup per token.

_NEG = 1 << 0  # negators
_BOOST_UP = 1 << 1  # intensifiers
_BOOST_DOWN = 1 << 2  # dampeners
_FAIL = 1 << 3  # failures, faults, poor service, corporate trouble
_FUNC = 1 << 4  # what a product or service should do: negated, a complaint ("won't turn on")
_SERVICE = 1 << 5  # what a customer expects to get: after "no", a complaint ("no refund")
_DUR_UNIT = 1 << 6  # after a number or "a few": time lost ("3 weeks")
_DUR_WORD = 1 << 7  # "forever", "ages"
_DUR_COUNT = 1 << 8  # "a", "few", "several" ... before a unit
_COMPLAINT_WORD = 1 << 9  # asking why, for a fix, saying "again", "nobody"
_PROFANITY = 1 << 10  # swearing and frustrated interjections
_RESOLVED = 1 << 11  # a problem put right ("sorted", "fixed", "quickly")
_NEWS = 1 << 12  # headline and market vocabulary
_PROMO = 1 << 13  # giveaways and offers
_FIRST = 1 << 14
_SECOND = 1 << 15
_UP_VERB = 1 << 16  # "acting" / "messing" ... before "up"
_BE_VERB = 1 << 17  # "is" / "went" / "shut" ... before "down"
_STILL = 1 << 18
_BUT = 1 << 19
_CONTEXT = 1 << 20  # second word of a two-word pattern
_PHRASE_START = 1 << 21  # first word of a phrase in _PHRASES

_PERSON = _FIRST | _SECOND
_CUES = (_FAIL | _FUNC | _SERVICE | _DUR_UNIT | _DUR_WORD | _COMPLAINT_WORD | _PROFANITY | _RESOLVED
         | _NEWS | _PROMO)

_GROUPS: dict[int, str] = {
    _NEG: """not no never cannot cant dont doesnt didnt isnt arent wasnt werent wont wouldnt couldnt
        shouldnt havent hasnt hadnt aint nor neither nothing nobody noone nowhere none without unable
        can't don't doesn't didn't isn't aren't wasn't weren't won't wouldn't couldn't shouldn't
        haven't hasn't hadn't ain't""",
    _BOOST_UP: """absolutely amazingly awfully completely considerably decidedly deeply effing enormously
        entirely especially exceptionally extremely fabulously flipping flippin frickin fricking
        friggin frigging fully fuckin fucking greatly hella highly hugely incredibly intensely majorly
        more most particularly purely quite really remarkably so substantially thoroughly totally
        tremendously uber unbelievably unusually utterly very super""",
    _BOOST_DOWN: """almost barely hardly kinda kindof less little marginally occasionally partly scarcely
        slightly somewhat sorta sortof""",
    _FAIL: """cancel cancels canceled cancelled canceling cancelling cancellation cancellations
        delay delays delayed delaying late overdue postponed stranded rebook rebooked overbooked
        bumped diverted missed misplaced mishandled
        broke broken crash crashes crashed crashing freeze freezes freezing froze frozen
        fail fails failed failing failure failures error errors bug bugs buggy glitch glitches glitchy
        outage outages downtime lag lags laggy lagging slow slower slowest stuck malfunction
        malfunctioning missing lost lose loses losing wrong overcharged overcharging scam scammed scams
        ripoff useless unusable unresponsive disconnect disconnects disconnected disconnecting dropped
        dropping drain drains drained draining dead died dies dying problem problems issue issues
        faulty defective damaged damage leak leaking hacked malware virus brick bricked cracked
        shattered overheating reinstall wiped erased deleted declined locked incompatible
        wait waits waited waiting queue rude ignore ignored ignores ignoring unhelpful unanswered
        unacceptable ridiculous pathetic joke nightmare disaster mess fiasco incompetent incompetence
        shambles complaint complaints complain complained complaining fraud unreliable
        inconvenience inconvenienced hassle worst worse terrible horrible awful poor garbage trash
        crap crappy sucks suck sucked frustrated frustrating frustration annoyed annoying disappointed
        disappointing disappointment angry furious upset fed avoid
        sue sued suing lawsuit lawsuits antitrust investigation investigated probe fined fines recall
        recalls recalled breach breached scandal boycott protest protests layoffs plunge plunges
        plunged plummets plummeted tumble tumbles tumbled slump slumps slumped drop drops falls fell
        downgrade downgraded criticizes criticized criticism backlash outrage controversy accused
        allegations alleged violation banned ban crisis doomed warns warning penalty arrested
        shutdown""",
    _FUNC: """work works working worked load loads loading loaded open opens opening opened turn turns
        turning start starts boot boots charge charges charging connect connects connecting connected
        sync syncs syncing synced respond responds responding responded reply replies replied replying
        answer answers answered arrive arrives arrived come came show shows showing showed shown
        deliver delivered ship shipped update updated updating install installs installed download
        downloaded upload let lets allow allows allowing allowed help helps helped helping fix fixed
        fixing receive received send sent recognize recognise accept accepts accepted pick call called
        get got find found hear heard care cares listen listened return returned refund refunded
        honor honour honored resolve resolved solve solved understand explain explained apologize
        apologise apologized give given tell told play plays playing run runs running last lasts
        lasted hold holds see use access log login sign post read view buy make save restore here""",
    _SERVICE: """refund refunds response responses reply replies answer answers help one body service
        signal wifi internet connection power update updates info information call calls email emails
        explanation apology compensation support notice communication contact word sign clue progress
        solution fix resolution confirmation""",
    _DUR_UNIT: "min mins minute minutes hr hrs hour hours day days week weeks month months",
    _DUR_WORD: "forever ages overnight",
    _DUR_COUNT: "a an few several many multiple couple",
    _COMPLAINT_WORD: """why again keeps kept anymore yet everytime constantly fix fixes fixing wish should
        shouldn't must refund refunds compensation compensate reimburse reimbursement nobody noone""",
    _PROFANITY: """fuck fucks fucked fucking fuckin fuk wtf shit shitty bullshit damn dammit crap ffs smh
        omfg pissed screw screwed bs ugh ughh argh grr fml epicfail sigh""",
    _RESOLVED: """sorted resolved solved fixed quick quickly fast promptly swift swiftly speedy
        straightaway""",
    _NEWS: """announces announced announce launches launched launch unveils unveiled reveals revealed
        reports reported report releases released release says said via new available coming event
        keynote conference stock shares earnings price analyst analysts ceo percent quarter million
        billion nasdaq rumor rumors leaked video photos read article blog news breaking""",
    _PROMO: """win giveaway contest enter chance sweepstakes deal deals sale discount coupon offer promo
        free prize follow""",
    _FIRST: "i my me mine myself im i'm i've ive i'd i'll",
    _SECOND: "you your ur u you're youre yours",
    _UP_VERB: "acting messing screwing fucking effing tripping mucking",
    _BE_VERB: "is are was were be been being still goes went going gone shut shuts shutting",
    _STILL: "still",
    _BUT: "but",
    _CONTEXT: "up down help my",
}

# VADER valences that mislead in brand mentions: comparisons ("like"), requests ("please help"),
# greetings ("dear"), promotions ("free", "win") and stock talk ("shares").
_VALENCE_OVERRIDES = {
    "like": 0.0, "help": 0.0, "please": 0.0, "free": 0.0, "want": 0.0, "pretty": 0.0, "well": 0.0,
    "god": 0.0, "support": 0.0, "care": 0.0, "sure": 0.0, "true": 0.0, "restore": 0.0, "no": 0.0,
    "stock": 0.0, "wish": 0.0, "dear": 0.0, "share": 0.0, "shares": 0.0, "party": 0.0, "fan": 0.0,
    "win": 0.0, "chance": 0.0, "joke": -1.5, "hope": 0.8, "yes": 0.5, "ok": 0.5, "okay": 0.5,
    "fine": 0.3, "lol": 0.8, "haha": 0.8,
}
# Two-word phrases whose valence replaces the second word's (and which no negator flips).
_PHRASES: dict[tuple[str, str], float] = {
    ("can't", "wait"): 2.0, ("cant", "wait"): 2.0, ("cannot", "wait"): 2.0,
    ("no", "problem"): 1.0, ("no", "problems"): 1.0, ("no", "worries"): 1.0,
    ("no", "complaints"): 1.5, ("no", "issues"): 1.0, ("well", "done"): 2.0, ("great", "job"): 2.5,
    ("thank", "you"): 1.5, ("no", "doubt"): 0.5, ("kudos", "to"): 2.3, ("shout", "out"): 1.5,
}
# Two-word complaint patterns: waiting, demanding, leaving.
_COMPLAINT_PAIRS: frozenset[tuple[str, str]] = frozenset({
    ("on", "hold"), ("all", "day"), ("all", "night"), ("need", "to"), ("needs", "to"),
    ("never", "again"), ("done", "with"), ("last", "time"), ("lost", "me"), ("lost", "a"),
    ("never", "buy"), ("never", "use"), ("never", "fly"), ("never", "flying"), ("never", "shop"),
    ("never", "recommend"), ("never", "order"), ("never", "book"), ("never", "using"),
    ("never", "buying"), ("where's", "my"), ("wheres", "my"), ("for", "nothing"),
})
_HELP_ASKERS = frozenset({"please", "pls", "plz", "need", "someone", "somebody", "anyone"})
_HELP_AS_NOUN = frozenset({"the", "your", "ur", "for", "great", "all", "of", "with", "quick", "kind"})

FEATURE_NAMES: tuple[str, ...] = (
    "pos_sum", "neg_sum", "compound", "n_pos", "n_neg", "emo_pos", "emo_neg", "exclamations",
    "questions", "multi_question", "caps", "fail", "negated_fail", "profanity", "complaint_cues",
    "pos_in_complaint", "negated_pos", "first_person", "second_person",
    "first_person_fail", "url", "retweet", "news", "promo", "info_question", "log_words",
)
_WORDS, _EMO_POS, _EMO_NEG = (FEATURE_NAMES.index(name) for name in ("log_words", "emo_pos", "emo_neg"))

# Emoji whose VADER value (the sum of its name's words) misreads them in social media:
# "broken heart" is not positive, "fire" is praise, and many faces and gestures score nothing.
_EMOJI_OVERRIDES = {
    "😡": -2.5, "🤬": -3.0, "😤": -1.8, "👎": -2.0, "🙄": -1.5, "😒": -1.5, "💩": -2.0, "🖕": -2.5,
    "🤦": -1.5, "💔": -2.0, "😔": -1.0, "😑": -1.0, "🔥": 1.5, "👍": 1.8, "👏": 1.8, "🙏": 1.0,
    "💯": 1.5, "🎉": 2.0, "⭐": 1.0, "🙌": 2.0, "💪": 1.5,
}

# ---- tokenising -------------------------------------------------------------------------------

_URL_RE = re.compile(r"https?://\S+")  # case-sensitive is 3x faster; "HTTP://" is handled below
_ANY_CASE_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)
_WWW_RE = re.compile(r"www\.\S+", re.IGNORECASE)
_MENTION_RE = re.compile(r"@\w+")
_CAMEL_HASHTAG_RE = re.compile(r"#(\w*[a-z][A-Z]\w*)")  # plain hashtags need nothing: "#" is not a word
_CASHTAG_RE = re.compile(r"\$[a-z]{1,5}\b")
_ASCII_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
_CAMEL_RE = re.compile(r"(?<=[a-z])(?=[A-Z])")
_EMOJI_RE = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]")
# Mis-decoded punctuation seen in published tweet sets, and typographic apostrophes.
_MOJIBAKE = (("â€™", "'"), ("â€˜", "'"), ("â€œ", '"'), ("â€\x9d", '"'), ("’", "'"), ("‘", "'"))

_B_INCR = 0.293  # VADER's booster step
_C_INCR = 0.733  # VADER's ALL-CAPS step
_N_SCALAR = -0.74  # VADER's negation factor


@dataclass(frozen=True)
class _Lexicon:
    words: dict[str, tuple[float, int]]
    emoticons: dict[str, float]
    emoji: dict[str, float]


@dataclass(frozen=True)
class _Model:
    # Logits relative to neutral's (softmax only needs differences): one weight per feature.
    negative: tuple[float, ...]
    positive: tuple[float, ...]
    negative_bias: float
    positive_bias: float


T = TypeVar("T")


class _LoadedOnce(Generic[T]):
    """A value built on first use and kept: nothing is loaded at import, and threads asking for it at the
    same moment build it once."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self.value: T | None = None

    def __call__(self) -> T:
        if self.value is None:
            with self._lock:
                if self.value is None:
                    self.value = self._build()
        return self.value


def _build_lexicon() -> _Lexicon:
    package = resources.files("vaderSentiment")
    raw: dict[str, float] = {}
    for line in package.joinpath("vader_lexicon.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            raw[parts[0]] = float(parts[1])
    valences: dict[str, float] = {}
    emoticons: dict[str, float] = {}
    for key, value in raw.items():
        if re.fullmatch(r"[a-z][a-z'\-]*", key):
            valences[key] = value
        elif not any(ch.isalpha() for ch in key[1:]):
            emoticons[key] = value
            emoticons.setdefault(key.lower(), value)
    valences.update(_VALENCE_OVERRIDES)
    emoji: dict[str, float] = {}
    for line in package.joinpath("emoji_utf8_lexicon.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            value = sum(valences.get(word, 0.0) for word in parts[1].lower().split())
            if value:
                emoji[parts[0]] = value
    emoji.update(_EMOJI_OVERRIDES)
    words: dict[str, tuple[float, int]] = {word: (value, 0) for word, value in valences.items()}
    for flag, group in _GROUPS.items():
        for word in group.split():
            value, flags = words.get(word, (0.0, 0))
            words[word] = (value, flags | flag)
    # Words of patterns must be found even when they carry no valence of their own.
    for first, second in _PHRASES:
        value, flags = words.get(first, (0.0, 0))
        words[first] = (value, flags | _PHRASE_START)
        words.setdefault(second, (0.0, 0))
    for _, second in _COMPLAINT_PAIRS:
        value, flags = words.get(second, (0.0, 0))
        words[second] = (value, flags | _CONTEXT)
    return _Lexicon(words=words, emoticons=emoticons, emoji=emoji)


def _load_model() -> _Model:
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    if tuple(data["features"]) != FEATURE_NAMES or tuple(data["labels"]) != LABELS:
        raise ValueError(f"{MODEL_PATH} does not match this version of bot.listening.sentiment; refit it")
    weights, bias = data["weights"], data["bias"]

    def relative(label: str) -> tuple[float, ...]:
        return tuple(float(w) - float(v) for w, v in zip(weights[label], weights["neutral"], strict=True))

    return _Model(
        negative=relative("negative"),
        positive=relative("positive"),
        negative_bias=float(bias["negative"]) - float(bias["neutral"]),
        positive_bias=float(bias["positive"]) - float(bias["neutral"]),
    )


_lexicon = _LoadedOnce(_build_lexicon)
_model = _LoadedOnce(_load_model)


# ---- features ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Cleaned:
    """A post with links, @mentions and mojibake taken out, and what was taken out counted."""

    text: str
    urls: int
    emoji_positive: float
    emoji_negative: float


@dataclass(slots=True)
class _WordCounts:
    """What the lexicon found in a post's words (`_count_words`)."""

    pos_sum: float
    neg_sum: float
    n_pos: int
    n_neg: int
    negated_pos: int
    fail: int
    negated_fail: int
    complaint: int
    profanity: int
    resolved: int
    first: int
    second: int
    news: int
    promo: int
    caps: int


def extract_features(text: str) -> list[float]:
    """The model's input for one post: a list of floats in the order of `FEATURE_NAMES`."""
    lexicon = _lexicon()
    cleaned = _clean(text, lexicon)
    text = cleaned.text
    emo_pos, emo_neg = cleaned.emoji_positive, cleaned.emoji_negative
    # ALL-CAPS emphasis needs some words in capitals and some not (VADER's "cap differential").
    shouting = not text.isupper() and not text.islower()
    low = text.lower()
    exclamations = low.count("!")
    questions = low.count("?")
    cashtag = 1 if "$" in low and _CASHTAG_RE.search(low) else 0
    if ":" in low or ";" in low or "=" in low or "<3" in low:
        emoticons = lexicon.emoticons
        for token in low.split():  # emoticons stand apart, as VADER reads them
            valence = emoticons.get(token)
            if valence is not None:
                if valence > 0:
                    emo_pos += valence
                else:
                    emo_neg -= valence
    words = _ASCII_WORD_RE.findall(low) if low.isascii() else _WORD_RE.findall(low)
    counts = _count_words(words, text, shouting=shouting, questions=questions, lexicon=lexicon)
    return _feature_vector(counts, low, words, cleaned.urls, emo_pos, emo_neg, exclamations, questions, cashtag)


def _clean(text: str, lexicon: _Lexicon) -> _Cleaned:
    """Unescape HTML, mend mojibake, score emoji, and take out links and @mentions (counting links)."""
    if "&" in text:
        text = html.unescape(text)
    emo_pos = emo_neg = 0.0
    if not text.isascii():
        for bad, good in _MOJIBAKE:
            if bad in text:
                text = text.replace(bad, good)
        for ch in _EMOJI_RE.findall(text):
            value = lexicon.emoji.get(ch, 0.0)
            if value > 0:
                emo_pos += value
            else:
                emo_neg -= value
    url = 0
    if "://" in text:
        text, url = (_ANY_CASE_URL_RE if "TTP" in text else _URL_RE).subn(" ", text)
    if "www." in text:
        text, found = _WWW_RE.subn(" ", text)
        url += found
    if "{link}" in text:  # the SXSW set's placeholder for links
        text = text.replace("{link}", " ")
        url += 1
    if "@" in text:
        text = _MENTION_RE.sub(" ", text)
    if "#" in text:
        text = _CAMEL_HASHTAG_RE.sub(_split_hashtag, text)
    return _Cleaned(text, url, emo_pos, emo_neg)


def _count_words(words: list[str], text: str, *, shouting: bool, questions: int, lexicon: _Lexicon) -> _WordCounts:
    """One pass over the words: valence with boosters, negation, "but" and capitals (VADER's rules), and
    the complaint cues (failures, time lost, "no refund", "still waiting", profanity …)."""
    n = len(words)
    info = lexicon.words
    pos_sum = neg_sum = 0.0
    n_pos = n_neg = negated_pos = 0
    fail = negated_fail = complaint = profanity = resolved = first = second = news = promo = caps = 0
    last_neg = last_still = -10
    but_factor = 1.0
    prev = ""
    prev_flags = 0
    for i, word in enumerate(words):
        entry = info.get(word)
        if entry is None:
            if i + 1 < n and word.isdigit():
                following = info.get(words[i + 1])
                if following is not None and following[1] & _DUR_UNIT:
                    complaint += 1  # "3 weeks", "45 minutes": time lost
            prev = word
            prev_flags = 0
            continue
        valence, flags = entry
        negated = i - last_neg <= 3
        if flags:
            if flags & _PERSON:
                if flags & _FIRST:
                    first += 1
                else:
                    second += 1
            if flags & _CUES:
                if flags & _FAIL:
                    if i - last_neg <= 2:
                        negated_fail += 1
                    else:
                        fail += 1
                if flags & _FUNC and i - last_neg <= 2:
                    complaint += 1  # "won't turn on", "doesn't work", "can't log in"
                if flags & _SERVICE and (prev == "no" or prev == "zero"):
                    complaint += 1  # "no refund", "no reply"
                if (flags & _DUR_UNIT and prev_flags & _DUR_COUNT) or flags & _DUR_WORD:
                    complaint += 1  # "a few hours", "forever"
                if flags & _COMPLAINT_WORD:
                    complaint += 1  # "why", "again", "fix", "should", "nobody"
                if flags & _PROFANITY:
                    profanity += 1
                if flags & _RESOLVED and not negated and not questions:
                    resolved += 1
                if flags & _NEWS:
                    news += 1
                if flags & _PROMO:
                    promo += 1
            if flags & _CONTEXT:
                pair = (prev, word)
                if pair in _COMPLAINT_PAIRS:
                    complaint += 1  # "on hold", "need to", "never again", "done with"
                    if word == "nothing" and i > 1 and words[i - 2] in ("thanks", "thank", "thx"):
                        # "thanks for nothing": the thanks was sarcasm
                        pos_sum = max(0.0, pos_sum - 1.9)
                        neg_sum += 1.9
                elif (word == "up" and prev_flags & _UP_VERB) or (word == "down" and prev_flags & _BE_VERB):
                    complaint += 1  # "acting up", "is down"
                elif word == "my" and i > 1 and words[i - 2] == "where" and prev_flags & _BE_VERB:
                    complaint += 1  # "where is my refund?"
                elif word == "help" and prev not in _HELP_AS_NOUN and (
                    i == 0 or i == n - 1 or prev in _HELP_ASKERS or words[i + 1] in ("me", "us")
                ):
                    complaint += 1  # "please help", "help me"
            if flags & _STILL:
                last_still = i
            elif i - last_still <= 3 and (flags & _NEG or word == "waiting"):
                complaint += 1  # "still no ...", "still waiting", "still doesn't"
                last_still = -10
            if flags & _BUT:
                pos_sum *= 0.5
                neg_sum *= 0.5
                but_factor = 1.5
            if flags & _NEG:
                last_neg = i
                prev = word
                prev_flags = flags
                continue
        if prev_flags & _PHRASE_START:
            phrase = _PHRASES.get((prev, word))
            if phrase is not None:
                valence = phrase
                negated = False
                last_neg = -10
        if valence:
            if prev_flags & _BOOST_UP:
                valence += _B_INCR if valence > 0 else -_B_INCR
            elif prev_flags & _BOOST_DOWN:
                valence -= _B_INCR if valence > 0 else -_B_INCR
            if shouting and len(word) > 2 and word.upper() in text:
                caps += 1
                valence += _C_INCR if valence > 0 else -_C_INCR
            if negated:
                if valence > 0:
                    negated_pos += 1
                valence *= _N_SCALAR
            valence *= but_factor
            if valence > 0:
                pos_sum += valence
                n_pos += 1
            else:
                neg_sum -= valence
                n_neg += 1
        prev = word
        prev_flags = flags
    if n and (words[-1] == "goodbye" or words[-1] == "bye"):
        complaint += 1

    return _WordCounts(pos_sum, neg_sum, n_pos, n_neg, negated_pos, fail, negated_fail, complaint, profanity,
                       resolved, first, second, news, promo, caps)


def _feature_vector(counts: _WordCounts, low: str, words: list[str], url: int, emo_pos: float, emo_neg: float,
                    exclamations: int, questions: int, cashtag: int) -> list[float]:
    """The counts as the model's features: capped, so a 10,000-character RSS item stays inside the range
    the model was fitted on (tweets)."""
    pos_sum, neg_sum, n_pos, n_neg = counts.pos_sum, counts.neg_sum, counts.n_pos, counts.n_neg
    fail, negated_fail, complaint, profanity = counts.fail, counts.negated_fail, counts.complaint, counts.profanity
    resolved, first, second, news, promo, caps = (counts.resolved, counts.first, counts.second, counts.news,
                                                  counts.promo, counts.caps)
    negated_pos = counts.negated_pos
    n = len(words)
    total = pos_sum - neg_sum + emo_pos - emo_neg
    if total:
        emphasis = 0.292 * min(exclamations, 4)
        total += emphasis if total > 0 else -emphasis
    complaint += fail + profanity
    if resolved:  # a problem told as put right ("sorted my issue in 5 minutes") is not a complaint
        complaint = max(0, complaint - 2 * resolved)
        fail = max(0, fail - resolved)
    # Counts are capped (the tenth "!" says nothing the third did not) and sums too, so a
    # 10,000-character RSS item stays inside the range the model was fitted on (tweets).
    pos_sum = pos_sum if pos_sum < 10.0 else 10.0
    neg_sum = neg_sum if neg_sum < 10.0 else 10.0
    return [
        pos_sum,
        neg_sum,
        total / math.sqrt(total * total + 15.0),
        n_pos if n_pos < 4 else 4,
        n_neg if n_neg < 4 else 4,
        emo_pos if emo_pos < 6.0 else 6.0,
        emo_neg if emo_neg < 6.0 else 6.0,
        exclamations if exclamations < 3 else 3,
        questions if questions < 3 else 3,
        1 if ("??" in low or "?!" in low or "!?" in low) else 0,
        caps if caps < 3 else 3,
        fail if fail < 4 else 4,
        negated_fail if negated_fail < 2 else 2,
        profanity if profanity < 3 else 3,
        complaint if complaint < 6 else 6,
        pos_sum if complaint else 0.0,
        negated_pos if negated_pos < 2 else 2,
        first if first < 4 else 4,
        second if second < 3 else 3,
        1 if first and fail else 0,
        1 if url else 0,
        1 if n and words[0] == "rt" else 0,
        news + cashtag if news + cashtag < 3 else 3,
        promo if promo < 3 else 3,
        1 if questions and not complaint and not n_neg and not n_pos else 0,
        math.log1p(n if n < 50 else 50),
    ]


def _split_hashtag(match: re.Match[str]) -> str:
    """ "#NeverAgain" -> "Never Again": camel-cased hashtags are phrases ("#iPhone" stays whole)."""
    tag = match.group(1)
    return " " + tag[0] + _CAMEL_RE.sub(" ", tag[1:]) + " "


# ---- scoring ----------------------------------------------------------------------------------


def _classify(features: list[float], model: _Model) -> Sentiment:
    if not (features[_WORDS] or features[_EMO_POS] or features[_EMO_NEG]):
        return Sentiment("neutral", 0.0)  # no word, emoticon or emoji: nothing to judge
    # Softmax over (negative, neutral = 0, positive), written out: this runs once per mention.
    z_neg = model.negative_bias
    z_pos = model.positive_bias
    for w_neg, w_pos, x in zip(model.negative, model.positive, features, strict=True):  # mostly zeros
        if x:
            z_neg += w_neg * x
            z_pos += w_pos * x
    top = z_neg if z_neg > z_pos else z_pos
    if top < 0.0:
        top = 0.0
    e_neg = math.exp(z_neg - top)
    e_neu = math.exp(-top)
    e_pos = math.exp(z_pos - top)
    total = e_neg + e_neu + e_pos
    score = (e_pos - e_neg) / total
    if e_neg >= e_neu and e_neg >= e_pos:
        return Sentiment("negative", score if score < 0.0 else -1e-9)
    if e_pos > e_neu:
        return Sentiment("positive", score if score > 0.0 else 1e-9)
    return Sentiment("neutral", score)


def model_info() -> dict[str, Any]:
    """What the shipped model was trained on and its cross-validated figures (for READMEs and CLIs)."""
    data = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    return {key: data[key] for key in ("trained_on", "negative_boost", "cross_validation")}


def score_text(text: str) -> Sentiment:
    """Score one post (any unicode, any length; empty text is neutral)."""
    return _classify(extract_features(text), _model())


def score_texts(texts: Iterable[str]) -> list[Sentiment]:
    """Score many posts, in order."""
    model = _model()
    return [_classify(extract_features(text), model) for text in texts]
