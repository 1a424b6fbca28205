"""Each local `evaluate` module loads with the network blocked and returns the direct functions' numbers."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from emoreason.eval.classification import classification_metrics
from emoreason.eval.cot import cot_metrics
from emoreason.eval.metrics import METRIC_NAMES, metric_path
from emoreason.eval.offline_judge import load_encoder, offline_judge
from emoreason.eval.open_vocab import open_vocab_metrics
from emoreason.eval.valence import ccc, mer2023_score, mse

pytest.importorskip("datasets")


def _refuse(*args, **kwargs):
    raise AssertionError("an evaluate module tried to reach the network")


@pytest.fixture(scope="module")
def evaluate(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        for name in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
            env.setenv(name, "1")
        if "evaluate" not in sys.modules:
            # evaluate reads its cache folders once, on import: keep the module copies out of ~/.cache.
            cache = tmp_path_factory.mktemp("hf")
            env.setenv("HF_MODULES_CACHE", str(cache / "modules"))
            env.setenv("HF_METRICS_CACHE", str(cache / "metrics"))
        module = pytest.importorskip("evaluate")
    return module


@pytest.fixture
def load(evaluate, tmp_path, monkeypatch):
    """evaluate.load of a module by name, with every connection attempt failing the test."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)

    def _load(name: str):
        return evaluate.load(metric_path(name), keep_in_memory=True, cache_dir=str(tmp_path / "metrics"))

    return _load


def test_metric_path_names_every_module():
    for name in METRIC_NAMES:
        path = Path(metric_path(name))
        assert path.is_absolute() and path.is_file() and path.stem == name
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        metric_path("bleu")


def test_emotion_classification(load):
    labels = ["happy", "sad", "neutral"]
    references = ["happy", "sad", "sad", "neutral", "happy"]
    predictions = ["happy", "", "sad", "happy", None]  # "" and None: the answer named no label
    metric = load("emotion_classification")
    assert type(metric).__name__ == "EmotionClassification"
    result = metric.compute(predictions=predictions, references=references, labels=labels)
    direct = classification_metrics(references, [p or None for p in predictions], labels).to_json()
    assert result == direct
    assert result["unmatched"] == 2 and result["accuracy"] == pytest.approx(2 / 5)


def test_emotion_classification_requires_the_label_set(load):
    with pytest.raises(ValueError, match="labels: expected the label set"):
        load("emotion_classification").compute(predictions=["happy"], references=["happy"])


def test_valence(load):
    references, predictions = [0.5, -0.25, 1.0, 0.0], [0.25, -0.5, 0.75, 0.5]
    result = load("valence").compute(predictions=predictions, references=references, weighted_f1=0.6)
    assert result == {
        "mse": mse(references, predictions),
        "ccc": ccc(references, predictions),
        "mer2023_score": mer2023_score(0.6, mse(references, predictions)),
    }
    assert result["mse"] == pytest.approx((0.0625 * 3 + 0.25) / 4)
    assert "mer2023_score" not in load("valence").compute(predictions=predictions, references=references)


def test_open_vocab_overlap(load):
    references = [["joyful", "relieved"], ["sad"], ["furious"]]
    predictions = [["happy"], [], ["angry", "unheardofword"]]
    result = load("open_vocab_overlap").compute(predictions=predictions, references=references)
    assert result == open_vocab_metrics(references, predictions).to_json()
    assert result["empty_predictions"] == 1 and result["unmapped_predicted"] == 1


def test_offline_judge(load, tmp_path):
    predictions = ["She smiles and sounds cheerful.", "", "He is calm."]
    references = ["Her smile and bright voice show joy.", "He is angry.", "He shouts in rage."]
    cache_dir = str(tmp_path / "wordllama")
    result = load("offline_judge").compute(predictions=predictions, references=references, cache_dir=cache_dir)
    assert result == offline_judge(predictions, references, load_encoder(cache_dir)).to_json()
    assert set(result["per_item"]) == {"offline_embedding_similarity", "offline_lexical_f1"}


def test_cot_structure(load):
    labels = ["happy", "sad", "angry"]
    texts = [
        "Observations: a bright voice\nInterpretation: she is joyful\nConclusion: happy",
        "Observations: tears in her eyes\nReasoning: she is sorrowful\nAnswer: angry",
    ]
    modalities = [["video"], ["face", "audio"]]
    result = load("cot_structure").compute(predictions=texts, modalities=modalities, labels=labels)
    assert result == cot_metrics(texts, modalities, labels).to_json()
    assert result["consistency_rate"] == 0.5 and result["ungrounded_mentions"] == {"audio": 1}
