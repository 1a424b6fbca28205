"""The offline judge: lexical F1 by hand, embedding similarity from the wheel-shipped encoder, no network."""

from __future__ import annotations

import socket

import pytest

from emoreason.eval.offline_judge import (
    EMBEDDING_METRIC,
    LEXICAL_METRIC,
    TOKENIZER_FILE,
    OfflineJudge,
    content_tokens,
    default_cache_dir,
    lexical_f1,
    load_encoder,
    offline_judge,
    prepare_tokenizer,
)


def _refuse(*args, **kwargs):
    raise AssertionError("the offline judge tried to reach the network")


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt, by socket, requests or the tokenizers hub fallback, fails the test."""
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(socket, "getaddrinfo", _refuse)
    requests = pytest.importorskip("requests")
    monkeypatch.setattr(requests, "get", _refuse)
    monkeypatch.setattr(requests.Session, "request", _refuse)
    tokenizers = pytest.importorskip("tokenizers")
    monkeypatch.setattr(tokenizers.Tokenizer, "from_pretrained", _refuse)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return load_encoder(tmp_path_factory.mktemp("wordllama"))


# ---------------------------------------------------------------- lexical


def test_content_tokens_drop_case_punctuation_and_stopwords():
    assert content_tokens("She doesn't SMILE; her voice trembles, it's sad!") == ["smile", "voice", "trembles", "sad"]


def test_lexical_f1_known_answer():
    # prediction: woman smiling voice sounds cheerful (5); reference: smiling cheerful voice rises (4); overlap 3
    prediction = "The woman is smiling and her voice sounds cheerful."
    reference = "She is smiling; her cheerful voice rises."
    precision, recall = 3 / 5, 3 / 4
    assert lexical_f1(prediction, reference) == pytest.approx(2 * precision * recall / (precision + recall))
    assert lexical_f1(prediction, reference) == pytest.approx(2 / 3)


def test_lexical_f1_counts_repeated_words_as_often_as_both_use_them():
    assert lexical_f1("sad sad", "sad") == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert lexical_f1("Sad, sad.", "sad sad") == 1.0


def test_lexical_f1_without_content_words():
    assert lexical_f1("", "the") == 1.0  # neither side has a content word: nothing differs
    assert lexical_f1("it is", "angry") == 0.0
    assert lexical_f1("angry", "") == 0.0


# ---------------------------------------------------------------- embedding


def test_identical_texts_score_one(encoder):
    text = "Her voice trembles and she frowns, so she seems anxious."
    result = offline_judge([text], [text], encoder)
    assert result.per_item[EMBEDDING_METRIC][0] == pytest.approx(1.0, abs=1e-5)
    assert result.per_item[LEXICAL_METRIC][0] == 1.0


def test_similar_explanations_score_higher_than_unrelated_ones(encoder):
    reference = "He shouts and clenches his fists; he is furious."
    similar = "The man yells angrily with clenched fists, showing rage."
    unrelated = "The recipe needs two cups of flour and an egg."
    result = offline_judge([similar, unrelated], [reference, reference], encoder)
    close, far = result.per_item[EMBEDDING_METRIC]
    assert close > far
    assert -1.0 <= far <= close <= 1.0


def test_batch_reports_per_item_scores_means_and_empty_predictions(encoder):
    predictions = ["She is happy and smiling.", "", "He sounds sad."]
    references = ["She smiles happily.", "He is angry.", "His voice is sad and low."]
    result = offline_judge(predictions, references, encoder)
    assert set(result.per_item) == {EMBEDDING_METRIC, LEXICAL_METRIC}
    assert result.per_item[EMBEDDING_METRIC][1] == 0.0 and result.per_item[LEXICAL_METRIC][1] == 0.0
    assert result.offline_embedding_similarity == pytest.approx(sum(result.per_item[EMBEDDING_METRIC]) / 3)
    assert result.offline_lexical_f1 == pytest.approx(sum(result.per_item[LEXICAL_METRIC]) / 3)
    assert result.samples == 3 and result.empty_predictions == 1
    assert result.encoder.startswith("wordllama-") and "l2_supercat-256" in result.encoder
    assert set(result.to_json()) >= {EMBEDDING_METRIC, LEXICAL_METRIC, "per_item"}


def test_bad_input_names_the_field(encoder):
    with pytest.raises(ValueError, match=r"references\[1\]"):
        offline_judge(["a", "b"], ["fine", "  "], encoder)
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        offline_judge(["a", "b"], ["x"], encoder)
    with pytest.raises(TypeError, match=r"predictions\[0\]: expected a string"):
        offline_judge([None], ["x"], encoder)


def test_offline_judge_class_keeps_its_encoder_and_summarises(tmp_path):
    judge = OfflineJudge(cache_dir=tmp_path)
    empty = judge.score([], [])  # nothing explained: no means, and no encoder load
    assert judge._encoder is None
    assert empty.summary() == {
        EMBEDDING_METRIC: None, LEXICAL_METRIC: None, "scored": 0, "empty_predictions": 0, "encoder": empty.encoder,
    }
    result = judge.score(["She is sad."], ["She is sad."])
    assert judge.encoder is judge.encoder
    summary = result.summary()
    assert summary["scored"] == 1 and summary[LEXICAL_METRIC] == 1.0
    assert summary[EMBEDDING_METRIC] == pytest.approx(1.0, abs=1e-5)
    assert "per_item" not in summary


# ---------------------------------------------------------------- loading offline


def test_encoder_loads_with_the_network_blocked(tmp_path, monkeypatch):
    block_network(monkeypatch)
    fresh = load_encoder(tmp_path / "cache")  # a new cache dir: a real load, not a cached instance
    assert (tmp_path / "cache" / "tokenizers" / TOKENIZER_FILE).is_file()
    vectors = fresh.embed(["a calm voice"])
    assert vectors.shape == (1, 256)


def test_prepare_tokenizer_replaces_a_stale_copy(tmp_path):
    target = prepare_tokenizer(tmp_path)
    original = target.read_bytes()
    target.write_text("{}")  # e.g. left by an older wordllama
    assert prepare_tokenizer(tmp_path).read_bytes() == original
    assert [p.name for p in (tmp_path / "tokenizers").iterdir()] == [TOKENIZER_FILE]  # no temporary left over


def test_default_cache_dir_is_emoreason_owned(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "emoreason" / "wordllama"
