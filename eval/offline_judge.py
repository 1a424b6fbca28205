"""Score a predicted explanation against a reference one without any endpoint.

Two scores, each under its own name so they are never mixed with LLM-judge scores:

- `offline_embedding_similarity`: cosine similarity of the two texts' WordLlama embeddings (the
  256-d `l2_supercat` model, whose weights ship inside the wordllama wheel);
- `offline_lexical_f1`: token-level F1 of the two texts' content words (lowercased, punctuation and
  English stopwords removed), counting repeated words as often as both texts use them (SQuAD-style).

An empty prediction scores 0 on both; an empty reference is an error, since there is nothing to match.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from emoreason.atomic import atomic_path

if TYPE_CHECKING:
    from wordllama import WordLlamaInference

EMBEDDING_METRIC = "offline_embedding_similarity"
LEXICAL_METRIC = "offline_lexical_f1"

ENCODER_CONFIG = "l2_supercat"
ENCODER_DIM = 256
TOKENIZER_FILE = f"{ENCODER_CONFIG}_tokenizer_config.json"

# Small and fixed on purpose: a stopword list from a library (NLTK, spaCy) would be a download or a
# version-dependent input, and would silently change scores.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not of off on once only or other our ours ourselves out over own same she should so
    some such than that the their theirs them themselves then there these they this those through to too
    under until up very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also may might must shall seems seem seemed
    im ive id ill youre youve youd theyre theyve weve hes shes its thats theres whats
    dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt hasnt havent hadnt
    """.split()
)


# ---------------------------------------------------------------- lexical overlap


def content_tokens(text: str) -> list[str]:
    """Lowercased words of `text` without punctuation or stopwords; `don't` is one word, `dont`."""
    # Apostrophes are dropped rather than split on, so contractions stay one (stop)word.
    text = text.lower().replace("'", "").replace("\u2019", "")
    return [token for token in re.findall(r"[^\W_]+", text) if token not in STOPWORDS]


def lexical_f1(prediction: str, reference: str) -> float:
    """Token F1 of the content words; if either side has none, 1.0 when both have none, else 0.0."""
    predicted, expected = Counter(content_tokens(prediction)), Counter(content_tokens(reference))
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((predicted & expected).values())
    if overlap == 0:
        return 0.0
    precision = overlap / sum(predicted.values())
    recall = overlap / sum(expected.values())
    return 2 * precision * recall / (precision + recall)


# ---------------------------------------------------------------- embedding encoder


def default_cache_dir() -> Path:
    """emoreason's own folder for the encoder's tokenizer copy: $XDG_CACHE_HOME/emoreason/wordllama."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "emoreason" / "wordllama"


def _import_wordllama() -> ModuleType:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        import wordllama
    except ImportError as exc:
        raise ImportError("the offline judge needs wordllama: pip install 'emoreason[eval]'") from exc
    finally:
        # Importing wordllama calls logging.basicConfig(level=INFO) on the root logger; undo that
        # so loading a metric does not change what the rest of the program logs.
        root.setLevel(level)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
    return wordllama


def _wordllama_package_dir() -> Path:
    return Path(_import_wordllama().__file__).parent


def prepare_tokenizer(cache_dir: Path) -> Path:
    """Copy the wheel's tokenizer to `cache_dir/tokenizers/`, where WordLlama.load looks for it.

    wordllama 0.4 looks in `wordllama/tokenizer/` but its wheel ships `wordllama/tokenizers/`, so
    without this copy it would download the tokenizer. The copy is atomic, so processes that
    prepare the same cache at once never see half a file.
    """
    source = _wordllama_package_dir() / "tokenizers" / TOKENIZER_FILE
    if not source.is_file():
        raise FileNotFoundError(
            f"wordllama's wheel should ship its tokenizer at {source}; reinstall wordllama (emoreason never downloads it)"
        )
    target = cache_dir / "tokenizers" / TOKENIZER_FILE
    if not (target.is_file() and _same_bytes(source, target)):
        with atomic_path(target) as tmp:
            shutil.copyfile(source, tmp)
    return target


def _same_bytes(a: Path, b: Path) -> bool:
    # A wordllama upgrade may ship a new tokenizer; a stale copy would tokenize differently.
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


@functools.lru_cache(maxsize=2)
def _load_encoder(cache_dir: Path) -> WordLlamaInference:
    prepare_tokenizer(cache_dir)
    try:
        # disable_download: a missing file must fail here, never reach Hugging Face.
        return _import_wordllama().WordLlama.load(config=ENCODER_CONFIG, dim=ENCODER_DIM, cache_dir=cache_dir, disable_download=True)
    except FileNotFoundError as exc:
        message = f"the offline judge's encoder ({ENCODER_CONFIG}, {ENCODER_DIM}-d) is not installed locally: {exc}"
        raise FileNotFoundError(message) from exc


def load_encoder(cache_dir: str | os.PathLike | None = None) -> WordLlamaInference:
    """The WordLlama encoder, loaded from the wheel's files only (one instance per cache dir)."""
    return _load_encoder(Path(cache_dir or default_cache_dir()).expanduser().resolve())


def encoder_name() -> str:
    from importlib.metadata import version

    return f"wordllama-{version('wordllama')}:{ENCODER_CONFIG}-{ENCODER_DIM}"


def embedding_similarities(
    predictions: Sequence[str], references: Sequence[str], encoder: WordLlamaInference | None = None
) -> list[float]:
    """Cosine similarity of each prediction to its reference; an empty prediction scores 0.0."""
    _check_pairs(predictions, references)
    scores = [0.0] * len(predictions)
    filled = [i for i, text in enumerate(predictions) if text.strip()]
    if filled:
        encoder = encoder or load_encoder()
        a = encoder.embed([predictions[i] for i in filled]).astype(np.float64)  # [n, dim]
        b = encoder.embed([references[i] for i in filled]).astype(np.float64)  # [n, dim]
        cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        for i, value in zip(filled, np.clip(cosine, -1.0, 1.0)):
            scores[i] = float(value)
    return scores


# ---------------------------------------------------------------- batch API


@dataclasses.dataclass
class OfflineJudgeResult:
    offline_embedding_similarity: float | None
    """Mean over samples; None when there is no sample."""
    offline_lexical_f1: float | None
    """Mean over samples; None when there is no sample."""
    per_item: dict[str, list[float]]
    """Metric name -> one score per sample, in input order."""
    samples: int
    empty_predictions: int
    encoder: str

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> dict:
        """The means and counts without the per-item scores, as a results file keeps them."""
        return {
            EMBEDDING_METRIC: self.offline_embedding_similarity,
            LEXICAL_METRIC: self.offline_lexical_f1,
            "scored": self.samples,
            "empty_predictions": self.empty_predictions,
            "encoder": self.encoder,
        }


def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    for field, texts in (("predictions", predictions), ("references", references)):
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"{field}[{i}]: expected a string, got {type(text).__name__}")
    for i, text in enumerate(references):
        if not text.strip():
            raise ValueError(f"references[{i}]: expected a non-empty explanation to compare against")


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def offline_judge(
    predictions: Sequence[str], references: Sequence[str], encoder: WordLlamaInference | None = None
) -> OfflineJudgeResult:
    """Both offline scores for each (prediction, reference) pair, and their means.

    No pairs give no means (None) rather than an error: a run whose answers explain nothing
    still gets a results file.
    """
    _check_pairs(predictions, references)
    similarities = embedding_similarities(predictions, references, encoder)
    f1s = [lexical_f1(p, r) for p, r in zip(predictions, references)]
    return OfflineJudgeResult(
        offline_embedding_similarity=_mean(similarities),
        offline_lexical_f1=_mean(f1s),
        per_item={EMBEDDING_METRIC: similarities, LEXICAL_METRIC: f1s},
        samples=len(predictions),
        empty_predictions=sum(not p.strip() for p in predictions),
        encoder=encoder_name(),
    )


class OfflineJudge:
    """offline_judge with its encoder loaded on first use and kept: OfflineJudge().score(preds, refs)."""

    def __init__(self, cache_dir: str | os.PathLike | None = None):
        self.cache_dir = cache_dir
        self._encoder: WordLlamaInference | None = None

    @property
    def encoder(self) -> WordLlamaInference:
        if self._encoder is None:
            self._encoder = load_encoder(self.cache_dir)
        return self._encoder

    def score(self, predictions: Sequence[str], references: Sequence[str]) -> OfflineJudgeResult:
        # No pair to embed: answer without loading the encoder.
        return offline_judge(predictions, references, self.encoder if predictions else None)
