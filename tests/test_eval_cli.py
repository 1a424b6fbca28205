"""`emoreason eval` and `emoreason submit` end to end on small hand-made files."""

import json

import numpy as np
import pytest

from emoreason.eval.eval_cli import main as eval_main
from emoreason.eval.leaderboard import load_results
from emoreason.eval.submit_cli import main as submit_main
from emoreason.schema import write_samples

REFERENCES = [
    {"id": "s1", "targets": {"emotion": "happy", "valence": 2.0, "open_vocab": ["happy", "excited"]}},
    {"id": "s2", "targets": {"emotion": "sad", "valence": -1.0, "open_vocab": ["sad"]}},
    {"id": "s3", "targets": {"emotion": "angry", "valence": -2.0, "open_vocab": ["angry"]}},
    {"id": "s4", "targets": {"emotion": "happy", "valence": 1.0, "open_vocab": ["joyful"]}},
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def files(tmp_path):
    from emoreason.schema import Sample

    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [Sample.model_validate(r) for r in REFERENCES])
    preds = write_jsonl(tmp_path / "run-a.jsonl", [
        {"id": "s1", "text": "The person is happy.", "valence": 1.0},
        {"id": "s2", "text": "sad", "valence": -1.0},
        {"id": "s3", "text": "Either happy or sad, hard to say.", "valence": 0.0},  # names two labels: unmatched
        {"id": "s4", "error": {"reason": "unreadable", "message": "corrupt clip"}},
        {"id": "zz", "text": "happy"},  # no reference: reported, not scored
    ])
    return refs, preds


def test_eval_writes_results_with_provenance_plots_and_leaderboard(files, tmp_path, capsys):
    refs, preds = files
    out = tmp_path / "board"
    assert eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out)]) == 0
    results = json.loads((out / "run-a.results.json").read_text())
    c = results["classification"]
    # refs happy, sad, angry, happy; predictions happy, sad, unmatched, error -> 2 / 4 right
    assert c["accuracy"] == pytest.approx(0.5) and c["labels"] == ["angry", "happy", "sad"]
    assert c["weighted_f1"] == pytest.approx((1 * 0 + 2 * (2 / 3) + 1 * 1) / 4)  # happy: P 1, R 1/2 -> F1 2/3
    assert results["label_extraction"]["unmatched"] == 2
    assert results["label_extraction"]["unmatched_because"] == {"no_prediction": 0, "error": 1, "named_no_or_several_labels": 1}
    assert results["counts"] == {"references": 4, "predictions": 4, "missing": 0, "errors": 1, "extra": 1}
    # valence over the 3 samples that have one: errors (1,0,2) -> MSE 5/3
    assert results["valence"]["mse"] == pytest.approx(5 / 3) and results["valence"]["without_prediction"] == 1
    # s4 has no predicted valence: the MER2023 score is only partial, and says so
    assert "mer2023_score" not in results
    assert results["mer2023_score_partial"] == {"score": pytest.approx(c["weighted_f1"] - 0.25 * 5 / 3), "valence_scored": 3, "samples": 4}
    assert results["open_vocab"]["levels"]["1"]["recall"] > 0
    prov = results["provenance"]
    assert prov["taxonomy_version"] == "emotion-wheel-v1" and len(prov["predictions_sha256"]) == 64 and prov["date"]
    assert (out / "run-a.confusion.png").read_bytes()[:4] == b"\x89PNG" and (out / "run-a.recall.png").exists()
    assert "| run-a |" in (out / "leaderboard.md").read_text() and "<td>run-a</td>" in (out / "leaderboard.html").read_text()
    out = capsys.readouterr().out
    assert "weighted F1" in out and "MER2023 score (partial: 3 of 4 samples have a valence)" in out


def test_leaderboard_ranks_runs_across_result_files(files, tmp_path):
    refs, preds = files
    out = tmp_path / "board"
    better = write_jsonl(tmp_path / "run-b.jsonl", [{"id": r["id"], "text": r["targets"]["emotion"]} for r in REFERENCES])
    for p in (preds, better):
        assert eval_main(["--predictions", str(p), "--references", str(refs), "--out-dir", str(out), "--no-plots"]) == 0
    assert [r["name"] for r in load_results(out)] == ["run-b", "run-a"]
    rows = (out / "leaderboard.md").read_text().splitlines()
    assert rows[2].startswith("| run-b |") and rows[3].startswith("| run-a |")


def test_eval_errors_name_the_file_and_line(tmp_path, files, capsys):
    refs, _ = files
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "s1", "text": "happy"}\n{"id": "s1", "text": "sad"}\n')
    assert eval_main(["--predictions", str(bad), "--references", str(refs), "--out-dir", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:2: id 's1' appears twice" in capsys.readouterr().err
    bad.write_text('{"id": "s1", "valence": "high"}\n')
    assert eval_main(["--predictions", str(bad), "--references", str(refs), "--out-dir", str(tmp_path / "o")]) == 2
    assert "bad.jsonl:1: valence: expected a number" in capsys.readouterr().err


def test_submit_refuses_unusable_predictions_unless_forced(files, tmp_path, capsys):
    refs, preds = files
    out = tmp_path / "mer2023.csv"
    args = ["--benchmark", "mer2023", "--predictions", str(preds), "--references", str(refs), "--out", str(out)]
    assert submit_main(args) == 2
    err = capsys.readouterr().err
    assert "incomplete (--force writes it without those ids)" in err and not out.exists()
    assert "id 's3': the answer named no label of mer2023" in err and "id 's4': the prediction failed (unreadable)" in err
    assert submit_main([*args, "--force"]) == 0
    assert out.read_text().splitlines() == ["name,discrete,valence", "s1,happy,1.0", "s2,sad,-1.0"]
    assert submit_main(["--benchmark", "mer2023", "--check", str(out), "--references", str(refs)]) == 2
    assert "'s3' has no prediction" in capsys.readouterr().err


def test_submit_open_vocabulary_and_reasons(tmp_path):
    preds = write_jsonl(tmp_path / "p.jsonl", [
        {"id": "a", "text": "Happy, excited and a little nervous."},
        {"id": "b", "open_vocab": ["sad"], "text": "ignored"},
    ])
    ids = tmp_path / "ids.txt"
    ids.write_text("a\nb\n")
    npz = tmp_path / "track2-openset.npz"
    assert submit_main(["--benchmark", "mer2025-track2", "--predictions", str(preds), "--ids", str(ids), "--out", str(npz)]) == 0
    with np.load(npz, allow_pickle=False) as data:
        assert data["fileitems"].tolist() == ["[happy, excited, a little nervous]", "[sad]"]
    reasons = tmp_path / "emer.csv"
    assert submit_main(["--benchmark", "emer", "--predictions", str(preds), "--ids", str(ids), "--out", str(reasons)]) == 0
    assert submit_main(["--benchmark", "emer", "--check", str(reasons), "--ids", str(ids)]) == 0


def test_eval_with_an_llm_judge_records_it_and_reruns_from_cache(tmp_path):
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    from emoreason.schema import Sample

    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [
        Sample.model_validate({"id": "e1", "targets": {"emotion": "happy", "reasoning": "She smiles and laughs."}}),
        Sample.model_validate({"id": "e2", "targets": {"emotion": "sad", "clues": {"audio": "a trembling voice"}}}),
        Sample.model_validate({"id": "e3", "targets": {"emotion": "sad"}}),  # no explanation: not judged
    ])
    preds = write_jsonl(tmp_path / "expl.jsonl", [
        {"id": "e1", "text": "A wide smile and laughter: happy."},
        {"id": "e2", "text": "Her voice trembles: sad."},
        {"id": "e3", "text": "sad"},
    ])
    fake = FakeJudge(lambda n, body: "Score: 8" if "clues" in body["messages"][1]["content"] else "Score: 6")
    out = tmp_path / "board"
    with running_server(fake.app()) as url:
        args = ["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots",
                "--judge-url", f"{url}/v1", "--judge-model", "fake-judge"]
        assert eval_main(args) == 0
        assert fake.calls == 4  # 2 clue overlap + 2 label overlap
        assert eval_main(args) == 0
        assert fake.calls == 4  # the re-run came from the cache
    results = json.loads((out / "expl.results.json").read_text())
    judged = results["llm_judge"]
    assert judged["clue_overlap"] == {"mean": 8.0, "scored": 2, "unscored": 0, "failed": 0, "unparsable": 0}
    assert judged["label_overlap"]["mean"] == 6.0 and judged["not_scored"] == 1 and judged["cache_hits"] == 4
    assert results["provenance"]["judge_model"] == "fake-judge" and results["provenance"]["judge_prompt_version"] == "emer-judge-v1"
    assert "8.00" in (out / "leaderboard.md").read_text()


def test_eval_scores_chains_of_thought_and_explanations_offline(tmp_path):
    from emoreason.schema import Sample

    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [
        Sample.model_validate({"id": "c1", "media": {"video": "a.mp4"}, "targets": {"emotion": "happy", "reasoning": "She smiles; her voice is bright."}}),
        Sample.model_validate({"id": "c2", "media": {"image": "b.png"}, "targets": {"emotion": "sad", "reasoning": "Tears on her face."}}),
    ])
    preds = write_jsonl(tmp_path / "cot.jsonl", [
        {"id": "c1", "text": "Observations: she smiles and her voice is bright.\nInterpretation: she feels joy.\nConclusion: happy"},
        {"id": "c2", "text": "Observations: her voice trembles and she looks sad.\nInterpretation: sorrow.\nConclusion: happy"},
    ])
    out = tmp_path / "board"
    args = ["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots", "--cot", "--offline-judge"]
    assert eval_main(args) == 0
    results = json.loads((out / "cot.results.json").read_text())
    cot = results["cot"]
    assert cot["samples"] == 2 and cot["structure_mean"] == 1.0
    assert cot["consistency_rate"] == 0.5  # c2 reasons to sadness, concludes happy
    assert cot["grounding_mean"] < 1.0  # c2 is an image: its "voice" is not in the sample
    offline = results["offline_judge"]
    assert offline["scored"] == 2 and 0 < offline["offline_embedding_similarity"] <= 1 and offline["offline_lexical_f1"] > 0
    assert "llm_judge" not in results  # offline scores are never reported as judge scores


def _explained(tmp_path, n: int):
    from emoreason.schema import Sample

    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [Sample.model_validate({"id": f"e{i}", "targets": {"emotion": "happy", "reasoning": f"She smiles ({i})."}}) for i in range(n)])
    preds = write_jsonl(tmp_path / "judged.jsonl", [{"id": f"e{i}", "text": f"prediction {i}: a wide smile, happy."} for i in range(n)])
    return refs, preds


def test_one_garbled_judge_reply_leaves_one_item_unscored_and_the_rest_scored(tmp_path, capsys):
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    refs, preds = _explained(tmp_path, 12)
    garbled = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": 7}, "finish_reason": "stop"}]}

    def reply(n, body):
        text = body["messages"][1]["content"]
        return garbled if "prediction 5:" in text and "clues" in text else "Score: 8"

    out = tmp_path / "board"
    with running_server(FakeJudge(reply).app()) as url:
        rc = eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots",
                        "--judge-url", f"{url}/v1", "--judge-model", "fake-judge", "--judge-retries", "0", "--judge-timeout", "5"])
    assert rc == 0
    judged = json.loads((out / "judged.results.json").read_text())["llm_judge"]
    assert judged["clue_overlap"] == {"mean": 8.0, "scored": 11, "unscored": 1, "failed": 0, "unparsable": 1}
    assert judged["label_overlap"]["scored"] == 12
    assert judged["unscored_items"] == [{"id": "e5", "template": "clue_overlap", "fault": "unparsable", "reason": "unparsable reply"}]
    assert "11 scored, 0 failed, 1 unparsable" in capsys.readouterr().out


def test_a_judge_that_always_fails_gives_rc_0_with_counts(tmp_path, capsys):
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    refs, preds = _explained(tmp_path, 3)
    out = tmp_path / "board"
    with running_server(FakeJudge(lambda n, body: 503).app()) as url:
        rc = eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots",
                        "--judge-url", f"{url}/v1", "--judge-model", "fake-judge", "--judge-retries", "1"])
    assert rc == 0
    judged = json.loads((out / "judged.results.json").read_text())["llm_judge"]
    assert judged["clue_overlap"] == {"mean": None, "scored": 0, "unscored": 3, "failed": 3, "unparsable": 0}
    assert all(item["fault"] == "failed" and "InternalServerError" in item["reason"] for item in judged["unscored_items"])
    assert "clue_overlap n/a (0 scored, 3 failed, 0 unparsable)" in capsys.readouterr().out


def test_a_hanging_judge_is_bounded_by_judge_timeout_and_retries(tmp_path):
    from fake_judge import FakeJudge
    from serving_helpers import running_server

    refs, preds = _explained(tmp_path, 4)
    out = tmp_path / "board"
    import time

    with running_server(FakeJudge(delay=30).app()) as url:
        start = time.perf_counter()
        rc = eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots",
                        "--judge-url", f"{url}/v1", "--judge-model", "fake-judge", "--judge-timeout", "0.3", "--judge-retries", "1"])
        wall = time.perf_counter() - start
    assert rc == 0 and wall < 10
    judged = json.loads((out / "judged.results.json").read_text())["llm_judge"]
    assert judged["clue_overlap"]["failed"] == 4 and "Timeout" in judged["unscored_items"][0]["reason"]


def test_track1_with_a_fallback_label_has_exactly_the_benchmark_ids(files, tmp_path, capsys):
    refs, preds = files  # s3 names two labels, s4 failed; zz has no reference
    ids = tmp_path / "ids.txt"
    ids.write_text("s1\ns2\ns3\ns4\ns5\n")  # s5 has no prediction at all
    out = tmp_path / "track1.csv"
    args = ["--benchmark", "mer2025-track1", "--predictions", str(preds), "--ids", str(ids), "--out", str(out)]
    assert submit_main(args) == 2 and not out.exists()
    assert submit_main([*args, "--fallback-label", "neutral"]) == 0
    assert out.read_text().splitlines() == ["name,discrete", "s1,happy", "s2,sad", "s3,neutral", "s4,neutral", "s5,neutral"]
    meta = json.loads((tmp_path / "track1.csv.meta.json").read_text())
    assert meta["fallback_label"] == "neutral" and meta["fallback_ids"] == ["s3", "s4", "s5"]
    assert submit_main(["--benchmark", "mer2025-track1", "--check", str(out), "--ids", str(ids)]) == 0
    assert submit_main([*args, "--fallback-label", "joyful"]) == 2 and "not a mer2025-track1 label" in capsys.readouterr().err


def test_track2_is_named_as_the_official_scorer_expects(tmp_path, capsys):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a", "text": "Happy and excited."}])
    args = ["--benchmark", "mer2025-track2", "--predictions", str(preds)]
    assert submit_main([*args, "--out", str(tmp_path / "track2.npz")]) == 2 and "-openset.npz" in capsys.readouterr().err
    assert submit_main([*args, "--out", str(tmp_path / "run-openset.npz")]) == 0
    with np.load(tmp_path / "run.npz", allow_pickle=False) as data:  # the descriptions, beside the labels
        assert data["filenames"].tolist() == ["a"] and data["fileitems"].tolist() == ["Happy and excited."]


def test_eval_with_an_official_wheel_folder_scores_the_track2_protocol(tmp_path):
    from wheel_folders import write_wheel_folder

    from emoreason.schema import Sample

    folder = write_wheel_folder(tmp_path / "emotion_wheel")
    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [
        Sample.model_validate({"id": "o1", "targets": {"open_vocab": ["happy", "cheerful"]}}),
        Sample.model_validate({"id": "o2", "targets": {"open_vocab": ["sad"]}}),
        Sample.model_validate({"id": "o3", "targets": {"open_vocab": ["blorp"]}}),  # maps to nothing: skipped
    ])
    preds = write_jsonl(tmp_path / "ov.jsonl", [{"id": "o1", "text": "happiness, glad"}, {"id": "o2", "open_vocab": ["gloomy", "blorp"]},
                                                {"id": "o3", "text": "sad"}])
    out = tmp_path / "board"
    assert eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--no-plots", "--wheel", str(folder)]) == 0
    results = json.loads((out / "ov.results.json").read_text())
    scores = results["protocol_scores"]
    assert scores["protocol"] == "mer2025-track2" and scores["protocol_version"] == "1"
    assert scores["per_wheel"]["wheel1"]["level1"]["samples"] == 2 and 0 < scores["score"] <= 1
    assert scores["score"] == pytest.approx((scores["levels"]["level1"]["f1"] + scores["levels"]["level2"]["f1"]) / 2)
    prov = results["provenance"]
    assert prov["protocol"] == "mer2025-track2" and prov["open_label_extraction"] == "split"
    assert set(prov["wheel_source"]) >= {"format.csv", "synonym.xlsx", "wheel5.xlsx"} and len(prov["wheel_source"]["wheel1.xlsx"]) == 64
    assert "mer2025-track2" in (out / "leaderboard.md").read_text()
    assert eval_main(["--predictions", str(preds), "--references", str(refs), "--out-dir", str(out), "--protocol", "mer-unibench-hitrate"]) == 2


EXTRACT_SCRIPT = """
import sys
from emoreason.eval.eval_cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_judge_extraction_resumes_after_a_kill_without_repeating_finished_items(tmp_path):
    import sqlite3
    import subprocess
    import sys
    import time

    from fake_judge import FakeJudge
    from serving_helpers import running_server
    from wheel_folders import write_wheel_folder

    from emoreason.schema import Sample

    folder = write_wheel_folder(tmp_path / "emotion_wheel")
    n = 12
    refs = tmp_path / "refs.jsonl"
    write_samples(refs, [Sample.model_validate({"id": f"r{i}", "targets": {"open_vocab": ["happy"]}}) for i in range(n)])
    preds = write_jsonl(tmp_path / "desc.jsonl", [{"id": f"r{i}", "text": f"Clip {i}: she smiles and laughs."} for i in range(n)])
    fake = FakeJudge(lambda k, body: "[happy, cheerful]", delay=0.3)
    cache = tmp_path / "cache.sqlite"
    with running_server(fake.app()) as url:
        args = [sys.executable, "-c", EXTRACT_SCRIPT, "--predictions", str(preds), "--references", str(refs), "--out-dir", str(tmp_path / "o"),
                "--no-plots", "--wheel", str(folder), "--extraction", "judge", "--judge-url", f"{url}/v1", "--judge-model", "fake",
                "--judge-cache", str(cache), "--judge-concurrency", "1"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while fake.calls < 5 and time.time() < deadline:
            time.sleep(0.05)
        proc.kill()
        proc.wait()
        with sqlite3.connect(cache) as db:
            finished = db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        assert 3 <= finished < n
        asked_before = {b["messages"][1]["content"] for b in fake.bodies}
        fake.bodies.clear()
        assert subprocess.run(args, capture_output=True, timeout=120).returncode == 0
    asked_again = [b["messages"][1]["content"] for b in fake.bodies]
    assert len(asked_again) == n - finished  # no call for an item already extracted
    assert len(asked_before & set(asked_again)) <= 1  # at most the one in flight when killed
    results = json.loads((tmp_path / "o" / "desc.results.json").read_text())
    assert results["open_label_extraction"]["extracted"] == n and results["provenance"]["open_label_extraction"] == "judge"
