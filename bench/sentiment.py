"""Measure War Room's sentiment scorer against plain VADER on every labelled CSV.

    python bench/sentiment.py [--data ../shared/data] [--repeat 3]

For each CSV (columns `text` and `label`: negative / neutral / positive) and for all files pooled,
prints rows, accuracy, macro-F1, negative recall, negative precision and posts per second, for
`bot.listening.sentiment` ("ours") and for VADER 3.3.2 with its usual thresholds (compound >= 0.05 positive,
<= -0.05 negative). Metrics are computed here from a confusion matrix; no sklearn.

Honesty rules the table follows:
- The shipped model was fitted on `sanders_twitter_sentiment.csv`, so its row on that file is
  in-sample and is shown for reference only; the Sanders figure to quote is the k-fold
  cross-validated one printed under the table (refitted here, from `bench/fit_sentiment.py`).
- "held-out" pools the files the model never saw; "all" pools every file, Sanders in-sample.
- posts/s is single-core throughput: posts divided by the process CPU time of the fastest of
  `--repeat` runs (one thread), so other load on the machine does not distort it; the one-off
  lexicon and model load is excluded and reported separately.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from bot.listening import sentiment

LABELS = ("negative", "neutral", "positive")
TRAINING_FILE = "sanders_twitter_sentiment.csv"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass(frozen=True)
class Figures:
    """One scorer's figures on one set of posts."""

    rows: int
    accuracy: float
    macro_f1: float
    negative_recall: float
    negative_precision: float
    posts_per_second: float


def load(path: Path) -> tuple[list[str], list[str]]:
    """Texts and gold labels of one CSV (parsed as CSV: texts may span lines)."""
    texts: list[str] = []
    labels: list[str] = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            texts.append(row["text"])
            labels.append(row["label"])
    return texts, labels


def confusion(gold: Sequence[str], predicted: Sequence[str]) -> list[list[int]]:
    """3x3 counts, rows gold, columns predicted, in `LABELS` order."""
    index = {label: i for i, label in enumerate(LABELS)}
    matrix = [[0, 0, 0] for _ in LABELS]
    for g, p in zip(gold, predicted, strict=True):
        matrix[index[g]][index[p]] += 1
    return matrix


def metrics(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float, float, float]:
    """Accuracy, macro-F1 (unweighted mean over the three labels), negative recall and precision."""
    m = confusion(gold, predicted)
    total = sum(map(sum, m))
    f1s = []
    recalls = []
    precisions = []
    for c in range(3):
        tp = m[c][c]
        predicted_c = sum(m[r][c] for r in range(3))
        gold_c = sum(m[c])
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / gold_c if gold_c else 0.0
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    accuracy = sum(m[c][c] for c in range(3)) / total if total else 0.0
    return accuracy, sum(f1s) / 3, recalls[0], precisions[0]


def timed(score: Callable[[list[str]], list[str]], texts: list[str], repeat: int) -> tuple[list[str], float]:
    """Labels and posts per CPU-second (fastest of `repeat` runs)."""
    best = float("inf")
    labels: list[str] = []
    for _ in range(max(repeat, 1)):
        start = time.process_time()
        labels = score(texts)
        best = min(best, time.process_time() - start)
    return labels, len(texts) / best if best > 0 else float("inf")


def ours(texts: list[str]) -> list[str]:
    """Labels from `bot.listening.sentiment`."""
    return [s.label for s in sentiment.score_texts(texts)]


def vader_scorer() -> Callable[[list[str]], list[str]]:
    """Labels from plain VADER with the standard ±0.05 thresholds."""
    analyzer = SentimentIntensityAnalyzer()

    def score(texts: list[str]) -> list[str]:
        out = []
        for text in texts:
            compound = analyzer.polarity_scores(text)["compound"]
            out.append("positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral")
        return out

    return score


def figures(gold: list[str], predicted: list[str], rate: float) -> Figures:
    """Bundle the metrics of one scorer on one set."""
    return Figures(len(gold), *metrics(gold, predicted), rate)


def print_table(rows: list[tuple[str, Figures, Figures]]) -> None:
    """The side-by-side table, Markdown-formatted."""
    print("| file | rows | scorer | accuracy | macro-F1 | neg recall | neg precision | posts/s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for name, mine, theirs in rows:
        for scorer, f in (("ours", mine), ("VADER", theirs)):
            rate = f"{f.posts_per_second:,.0f}" if f.posts_per_second else "–"
            print(
                f"| {name} | {f.rows:,} | {scorer} | {f.accuracy:.3f} | {f.macro_f1:.3f} | "
                f"{f.negative_recall:.3f} | {f.negative_precision:.3f} | {rate} |"
            )


def sanders_cross_validation(data: Path) -> dict[str, float] | None:
    """Sanders k-fold figures, refitted now by bench/fit_sentiment.py's own procedure."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import fit_sentiment
    except ImportError:  # numpy missing: fall back to the figures stored with the model
        return None
    import numpy as np

    texts, y = fit_sentiment.load_training(data / TRAINING_FILE)
    x = np.array([sentiment.extract_features(text) for text in texts])
    boost = fit_sentiment.shipped_boost()
    return fit_sentiment.cross_validate(x, y, fit_sentiment.FOLDS, boost, fit_sentiment.L2)


def main(argv: list[str] | None = None) -> int:
    """Score every CSV under --data with both scorers and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of labelled CSVs")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs per file (fastest kept)")
    args = parser.parse_args(argv)
    files = sorted(args.data.glob("*.csv"))
    if not files:
        print(f"no CSV files in {args.data}", file=sys.stderr)
        return 2

    start = time.process_time()
    sentiment.score_text("warm-up: loads the lexicon and the model")
    load_seconds = time.process_time() - start
    vader = vader_scorer()

    rows: list[tuple[str, Figures, Figures]] = []
    pooled: dict[str, tuple[list[str], list[str], list[str]]] = {
        key: ([], [], []) for key in ("all", "held-out")
    }
    cpu = {"all": [0.0, 0.0], "held-out": [0.0, 0.0]}
    for path in files:
        texts, gold = load(path)
        mine, my_rate = timed(ours, texts, args.repeat)
        theirs, their_rate = timed(vader, texts, args.repeat)
        name = path.name + (" (in-sample)" if path.name == TRAINING_FILE else "")
        rows.append((name, figures(gold, mine, my_rate), figures(gold, theirs, their_rate)))
        for key in ("all", "held-out"):
            if key == "held-out" and path.name == TRAINING_FILE:
                continue
            pooled[key][0].extend(gold)
            pooled[key][1].extend(mine)
            pooled[key][2].extend(theirs)
            cpu[key][0] += len(texts) / my_rate
            cpu[key][1] += len(texts) / their_rate
    for key in ("held-out", "all"):
        gold, mine, theirs = pooled[key]
        if gold:
            rows.append((
                f"**{key}**",
                figures(gold, mine, len(gold) / cpu[key][0]),
                figures(gold, theirs, len(gold) / cpu[key][1]),
            ))
    print_table(rows)
    print(f"\nlexicon + model load: {load_seconds * 1000:.0f} ms CPU, once per process")

    if any(path.name == TRAINING_FILE for path in files):
        cv = sanders_cross_validation(args.data)
        if cv is None:
            cv = sentiment.model_info()["cross_validation"]
        print(
            f"{TRAINING_FILE}, ours, cross-validated (the figure to quote): accuracy {cv['accuracy']:.3f}, "
            f"macro-F1 {cv['macro_f1']:.3f}, negative recall {cv['negative_recall']:.3f}, "
            f"negative precision {cv['negative_precision']:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
