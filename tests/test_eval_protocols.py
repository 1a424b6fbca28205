"""Benchmark protocols against the official definitions: EW five-wheel F (MER2025 track 2 / MER-UniBench),
hit rate, sentiment, MER2024 OV, extraction modes, 5-fold aggregation, AU F1, ROUGE-L and micro-F1."""

from __future__ import annotations

import random
import re

import pytest
from wheel_folders import FORMS, SYNONYMS, WHEELS, write_wheel_folder

from emoreason.eval.field_metrics import au_f1, five_fold, micro_f1, rouge_l
from emoreason.eval.official_wheels import load_official_wheels
from emoreason.eval.taxonomy import TaxonomyError
from emoreason.eval.wheel_protocols import ew_scores, hit_rate

# ---- a reference implementation of the official definitions, straight from the data (not the files) ----


def ref_string_to_list(value):
    if isinstance(value, list):
        return value
    if value == "":
        return []
    if value[0] == "[":
        value = value[1:]
    if value[-1] == "]":
        value = value[:-1]
    return [item.strip() for item in re.split("['\",]", value) if item.strip() not in ["", ","]]


def ref_mappings():
    format_mapping = {}
    for name, forms in FORMS.items():
        for form in forms:
            format_mapping.setdefault(form, []).append(name)
        format_mapping.setdefault(name, []).append(name)
    raw_mapping = {}
    for run, rows in SYNONYMS.items():
        for word, synonyms in rows:
            raw = word.strip().lower()
            raw_mapping.setdefault(raw, set()).add(raw)
            for synonym in ref_string_to_list(synonyms):
                raw_mapping.setdefault(synonym.strip().lower(), set()).add(raw)
    wheel_maps = {}
    for number, tree in WHEELS.items():
        tree = {l1.lower(): {l2.lower(): [w.lower() for w in ws] for l2, ws in c.items()} for l1, c in tree.items()}
        level1, level2 = {}, {}
        for l1, children in tree.items():
            level1[l1] = l1
            level2[l1] = sorted(children)[0]
            for l2, words in children.items():
                level1[l2], level2[l2] = l1, l2
                for w in words:
                    level1[w], level2[w] = l1, l2
        wheel_maps[f"wheel{number}"] = {"level1": level1, "level2": level2}
    return format_mapping, raw_mapping, wheel_maps


def ref_backward(label, format_mapping, raw_mapping, wheel_map):
    if label not in format_mapping:
        return ""
    whole = [raw for fmt in format_mapping[label] for raw in raw_mapping[fmt]]
    for candidate in sorted(whole):
        if candidate in wheel_map:
            return wheel_map[candidate]
    return ""


def ref_overlap(refs, preds, wheel_map, format_mapping, raw_mapping):
    accuracy, recall = [], []
    for ref, pred in zip(refs, preds):
        gt = {m for m in (ref_backward(x.lower().strip(), format_mapping, raw_mapping, wheel_map) for x in ref_string_to_list(ref)) if m}
        pr = {m for m in (ref_backward(x.lower().strip(), format_mapping, raw_mapping, wheel_map) for x in ref_string_to_list(pred)) if m}
        if not gt:
            continue
        if not pr:
            accuracy.append(0)
            recall.append(0)
        else:
            accuracy.append(len(gt & pr) / len(pr))
            recall.append(len(gt & pr) / len(gt))
    return sum(accuracy) / len(accuracy), sum(recall) / len(recall)


def generated(seed=0, n=300):
    rng = random.Random(seed)
    vocab = sorted({*FORMS, *(f for forms in FORMS.values() for f in forms)}) + ["blorp", "Calm", "  Happy ", "SAD", "mad"]
    refs, preds = [], []
    for i in range(n):
        refs.append(rng.sample(vocab, rng.randint(1, 3)) if i % 17 else ["blorp", "Calm"])  # every 17th maps to nothing
        words = rng.sample(vocab, rng.randint(0, 3))
        preds.append("[" + ", ".join(w.strip() for w in words) + "]" if i % 2 else words)
    return refs, preds


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    return load_official_wheels(write_wheel_folder(tmp_path_factory.mktemp("emotion_wheel")))


def test_ew_scores_equal_the_official_definitions(wheels):
    refs, preds = generated()
    result = ew_scores(wheels, refs, preds)
    format_mapping, raw_mapping, wheel_maps = ref_mappings()
    level_means = {}
    for level in ("level1", "level2"):
        per_wheel = []
        for wheel in ("wheel1", "wheel2", "wheel3", "wheel4", "wheel5"):
            p, r = ref_overlap(refs, preds, wheel_maps[wheel][level], format_mapping, raw_mapping)
            f = 2 * p * r / (p + r)
            got = result.per_wheel[wheel][level]
            assert (got.precision, got.recall, got.f1) == pytest.approx((p, r, f), abs=1e-9)
            per_wheel.append((f, p, r))
        mean = [sum(x[k] for x in per_wheel) / 5 for k in range(3)]
        assert [result.levels[level][k] for k in ("f1", "precision", "recall")] == pytest.approx(mean, abs=1e-9)
        level_means[level] = mean[0]
    assert result.score == pytest.approx((level_means["level1"] + level_means["level2"]) / 2, abs=1e-9)
    assert 0 < result.score < 1
    assert result.skipped_references >= len(refs) // 17  # unmappable references were skipped
    assert result.dropped_predicted_words > 0 and result.empty_predictions > 0  # unknown words were dropped
    assert set(result.wheel_source) == {"format.csv", "synonym.xlsx", *(f"wheel{i}.xlsx" for i in range(1, 6))}


def test_unknown_words_are_dropped_and_unmappable_references_skipped(wheels):
    # "blorp" is no word form; "Calm" is a wheel word but not in format.csv: both map to nothing.
    result = ew_scores(wheels, [["happy"], ["blorp"], ["sad"]], [["happiness", "blorp"], ["happy"], []])
    for wheel in result.per_wheel.values():
        assert wheel["level1"].samples == 2  # the "blorp" reference is skipped
        assert wheel["level1"].precision == pytest.approx(0.5)  # 1.0 (blorp dropped) and 0.0 (empty)
    assert result.dropped_predicted_words == 1 and result.skipped_references == 1


def test_hand_checked_mapping_through_forms_synonyms_and_levels(wheels):
    # happiness -> happy (form) -> {happy} ; wheel1 has no "happy": level1 words are lower-cased keys,
    # so "happy" is its level-1 class Happy; glad -> happy via synonym run 1 and 2.
    assert wheels.map_word("happiness", "wheel1", "level1") == "happy"
    assert wheels.map_word("happiness", "wheel1", "level2") == "content"  # a level-1 word -> its first level-2 child
    assert wheels.map_word("glad", "wheel2", "level1") == "joy"  # glad -> happy (synonym) -> wheel2's level3 "happy"
    assert wheels.map_word("upset", "wheel3", "level1") == "negative"  # upset -> sad (synonym) -> wheel3 level2 "sad"
    assert wheels.map_word("blorp", "wheel1", "level1") == ""


def test_hit_rate_against_hand_computed_values(wheels):
    # wheel-by-wheel level-1 classes: happy->{happy,joy,positive,happy,joy}; sad->{sad,sadness,negative,sad,sad}
    result = hit_rate(wheels, ["happy", "sad", "angry"], [["joyful", "calm"], ["happy"], "[furious]"])
    # angry on wheel5 maps to nothing (no anger branch): skipped there.
    assert result["per_wheel"]["wheel1"] == {"hit_rate": pytest.approx(2 / 3), "samples": 3}
    assert result["per_wheel"]["wheel5"] == {"hit_rate": pytest.approx(1 / 2), "samples": 2}
    expected = (2 / 3 + 2 / 3 + 2 / 3 + 2 / 3 + 1 / 2) / 5
    assert result["hit_rate"] == pytest.approx(expected, abs=1e-12)


def test_wheel_folder_errors_name_the_file(tmp_path):
    with pytest.raises(TaxonomyError, match="missing"):
        load_official_wheels(tmp_path)
    folder = write_wheel_folder(tmp_path / "w")
    (folder / "wheel3.xlsx").write_bytes(b"not a workbook")
    with pytest.raises(TaxonomyError, match="wheel3.xlsx: not a readable .xlsx"):
        load_official_wheels(folder)


def test_sentiment_lexicon_mode_and_non_zero_scoring():
    from emoreason.eval.sentiment import lexicon_polarity, parse_polarity, sentiment_scores

    assert lexicon_polarity(["happy", "excited"]) == 1 and lexicon_polarity(["sad", "angry", "joyful"]) == -1
    assert lexicon_polarity(["surprised"]) == 0 and lexicon_polarity([]) == 0
    assert [parse_polarity(r) for r in ("Positive.", " negative", "Neutral\n", "mixed")] == [1, -1, 0, None]
    # references 2.0, -1.2, 0 (skipped), 0.4, -3; predictions +, 0 (counts as not positive), +, -, +
    scores = sentiment_scores([2.0, -1.2, 0.0, 0.4, -3.0], [1, 0, 1, -1, 1])
    # y_true [T, F, T, F], y_pred [T, F, F, T]: accuracy 2/4; F1 of T = 1/2, of F = 1/2 -> weighted 1/2
    assert scores == {"weighted_f1": pytest.approx(0.5), "accuracy": 0.5, "scored": 4, "zero_references_skipped": 1}


def test_five_fold_au_f1_rouge_l_and_micro_f1_hand_computed():
    folds = five_fold({f"fold{i}": {"uar": 0.1 * i, "war": 0.2 * i} for i in range(1, 6)})
    assert folds["uar_mean"] == pytest.approx(0.3) and folds["war_mean"] == pytest.approx(0.6) and folds["num_folds"] == 5
    au = au_f1(["AU6 and AU12", ["AU04"], []], [["AU06"], "AU4, AU9", []])
    # per sample: 2*1/(2+1)=2/3, 2*1/(1+2)=2/3, both empty 1 -> mean 7/9; micro: TP 2, FP 1, FN 1 -> 4/6
    assert au["au_f1"] == pytest.approx(7 / 9) and au["au_micro_f1"] == pytest.approx(2 / 3)
    # LCS("the cat sat on the mat", "the cat on a mat") = the cat on mat (4): P 4/5, R 4/6
    rouge = rouge_l(["the cat sat on the mat"], ["the cat on a mat"])
    assert rouge["rouge_l_precision"] == pytest.approx(0.8) and rouge["rouge_l_recall"] == pytest.approx(4 / 6)
    assert rouge["rouge_l_f"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    # TP a, c = 2; FP d = 1; FN b = 1 -> 4 / 6
    assert micro_f1([{"a", "b"}, {"c"}], [{"a"}, {"c", "d"}]) == pytest.approx(2 / 3)


def test_emotion_llama_extraction_mode():
    from emoreason.eval.label_modes import emotion_llama_label

    labels = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
    assert emotion_llama_label("The emotion is happy", labels, "neutral") == "happy"
    assert emotion_llama_label("happy.", labels, "neutral") == "neutral"  # the token is "happy.": outside the set
    assert emotion_llama_label("I feel joyful", labels, "neutral") == "neutral"


def test_mer2024_ov_groups_synonyms_through_the_judge(tmp_path):
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    from emoreason.eval.judge_client import LLMJudge
    from emoreason.eval.mer2024_ov import listlist_to_list, mer2024_ov

    assert listlist_to_list("[['Agree', 'agreement'], ['Relaxed']]") == [["Agree", "agreement"], ["Relaxed"]]

    def reply(n, body):
        text = body["messages"][1]["content"]
        if "'joyful'" in text:
            return "Output: [['happy', 'joyful'], ['excited']]"
        return "[['sad'], ['worried']]"

    with running_server(FakeJudge(reply).app()) as url:
        judge = LLMJudge(f"{url}/v1", "fake", tmp_path / "c.sqlite", prompts="mer_unibench_v1", backoff_base=0.01)
        result = mer2024_ov([["happy", "excited"], ["sad"]], [["Joyful"], ["worried", "sad"]], judge, progress=False)
        judge.close()
    # sample 1: ref {happy, excited}, pred {happy}: acc 1, recall 1/2; sample 2: acc 1/2, recall 1
    assert result["set_accuracy"] == pytest.approx(0.75) and result["set_recall"] == pytest.approx(0.75)
    assert result["score"] == pytest.approx(0.75) and result["scored"] == 2 and result["failed"] == 0
