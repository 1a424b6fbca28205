"""Known-answer cases, computed by hand, for every metric; the emotion wheel's mapping."""

import pytest

from emoreason.eval.classification import classification_metrics
from emoreason.eval.open_vocab import open_vocab_metrics
from emoreason.eval.taxonomy import TaxonomyError, load_wheel, shipped_wheel
from emoreason.eval.valence import ccc, mer2023_score, mse

LABELS = ["a", "b", "c"]


def test_classification_by_hand():
    # a: TP 2, FN 1 (one said b) -> P 1, R 2/3, F1 0.8; b: TP 1, FP 1, FN 1 (unmatched) -> 0.5; c: 1.
    result = classification_metrics(["a", "a", "a", "b", "b", "c"], ["a", "a", "b", "b", None, "c"], LABELS)
    assert result.accuracy == pytest.approx(4 / 6) and result.war == result.accuracy
    assert result.weighted_f1 == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 1.0) / 6)
    assert result.macro_f1 == pytest.approx((0.8 + 0.5 + 1.0) / 3)
    assert result.uar == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)
    assert result.per_class_recall == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 1.0})
    assert result.confusion == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0]]  # last column: unmatched
    assert (result.total, result.unmatched) == (6, 1)


def test_unmatched_answers_are_misses_not_a_class():
    perfect = classification_metrics(["a", "b"], ["a", "b"], LABELS)
    assert perfect.weighted_f1 == perfect.uar == 1.0
    none = classification_metrics(["a", "b"], [None, None], LABELS)
    assert none.accuracy == none.weighted_f1 == none.macro_f1 == none.uar == 0.0 and none.unmatched == 2


def test_uar_ignores_classes_without_references():
    result = classification_metrics(["a", "a"], ["a", "c"], LABELS)
    assert result.uar == pytest.approx(0.5) and set(result.per_class_recall) == {"a"}


def test_classification_rejects_labels_outside_the_set():
    with pytest.raises(ValueError, match="not in the label set"):
        classification_metrics(["a"], ["happy"], LABELS)
    with pytest.raises(ValueError, match="references use labels outside"):
        classification_metrics(["z"], ["a"], LABELS)
    with pytest.raises(ValueError, match="2 references but 1 predictions"):
        classification_metrics(["a", "b"], ["a"], LABELS)


def test_valence_by_hand():
    assert mse([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)
    # cov 4/3, var_y 2/3, var_p 78/27, (mean diff)^2 4/9 -> 2 * 4/3 / 4 = 2/3
    assert ccc([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert ccc([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert mer2023_score(0.8, 1.2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="finite"):
        mse([1.0], [float("nan")])


def test_wheel_maps_word_forms_onto_every_level():
    wheel = shipped_wheel()
    assert wheel.version == "emotion-wheel-v1"
    happy = wheel.lookup("Happy!")
    assert (happy.primary, happy.secondary, happy.tertiary) == ("joy", "cheerfulness", "happiness")
    assert wheel.lookup("scared").tertiary == "fear" and wheel.lookup("afraid") == wheel.lookup("fearful")
    assert wheel.lookup("in love").secondary == "affection"
    assert wheel.lookup("worried").at(1) == "fear" and wheel.lookup("calm").at(1) == "neutral"
    assert wheel.lookup("flabbergasted") is None
    assert len({n.primary for n in wheel.nodes()}) == 7


def test_wheel_files_are_validated(tmp_path):
    clash = tmp_path / "clash.yaml"
    clash.write_text("version: x\ntree:\n  joy:\n    cheer:\n      glee: [happy]\n  sadness:\n    sad:\n      sorrow: [happy]\n")
    with pytest.raises(TaxonomyError, match="clash.yaml: word form 'happy' maps to both"):
        load_wheel(clash)
    flat = tmp_path / "flat.yaml"
    flat.write_text("version: x\ntree:\n  joy: [happy]\n")
    with pytest.raises(TaxonomyError, match=r"flat.yaml: tree.joy: expected secondary"):
        load_wheel(flat)


def test_open_vocab_by_hand():
    result = open_vocab_metrics([["happy", "excited"], ["angry"]], [["joyful"], ["furious", "sad"]])
    # level 1: {joy} vs {joy} -> P 1 R 1; {anger, sadness} vs {anger} -> P 0.5 R 1
    assert (result.levels[1].precision, result.levels[1].recall) == pytest.approx((0.75, 1.0))
    assert result.levels[1].f1 == pytest.approx(2 * 0.75 / 1.75)
    # level 2: {cheerfulness} vs {cheerfulness, zest} -> P 1 R 0.5; {rage, sadness} vs {rage} -> P 0.5 R 1
    assert (result.levels[2].precision, result.levels[2].recall, result.levels[2].f1) == pytest.approx((0.75, 0.75, 0.75))
    # level 3: joy vs happiness/excitement, fury/sadness vs anger: no overlap
    assert (result.levels[3].precision, result.levels[3].recall, result.levels[3].f1) == (0.0, 0.0, 0.0)
    assert result.unmapped_predicted == result.unmapped_reference == 0


def test_open_vocab_unknown_words_match_only_themselves():
    result = open_vocab_metrics([["flabbergasted"], ["flabbergasted"]], [["flabbergasted"], ["gobsmacked"]])
    assert result.levels[1].precision == pytest.approx(0.5) and result.levels[3].recall == pytest.approx(0.5)
    assert (result.unmapped_predicted, result.unmapped_reference) == (2, 2)
    empty = open_vocab_metrics([["happy"]], [[]])
    assert empty.levels[1].f1 == 0.0 and empty.empty_predictions == 1
    with pytest.raises(ValueError, match="reference 0 has no labels"):
        open_vocab_metrics([[]], [["happy"]])
