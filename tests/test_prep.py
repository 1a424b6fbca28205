"""`emoreason prep` end to end on generated media with tiny random-weight encoders."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emoreason.config import load_config
from emoreason.data_prep.prep_config import PrepConfig
from emoreason.data_prep.runner import run_prep
from emoreason.features.cache import load_feature
from emoreason.schema import load_samples

CONFIG = Path(__file__).resolve().parents[1] / "configs/prep/demo.yaml"


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    from emoreason.encoders.tiny import build_tiny_encoders

    return build_tiny_encoders(tmp_path_factory.mktemp("encoders"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, SyntheticConfig(num_per_class=3, seed=3))
    return root


def prep_overrides(encoders, input, output_dir, *extra):
    fill = [f"input={input}", f"output_dir={output_dir}", "workers=1", "progress=false"]
    return fill + [f"encoders.{m}.model={p}" for m, p in encoders.items()] + list(extra)


def prep(encoders, input, output_dir, *extra):
    return run_prep(load_config(PrepConfig, CONFIG, prep_overrides(encoders, input, output_dir, *extra)))


def mixed_input(tmp_path, synthetic, media_dir):
    """Two good synthetic clips plus every kind of bad input, under one data root."""
    root = tmp_path / "data"
    shutil.copytree(synthetic / "clips", root / "clips")
    for name in ["no_audio.mp4", "truncated.mp4", "empty.mp4", "not_media.mp4", "still.png"]:
        shutil.copy(media_dir / name, root / name)
    good = [s.to_json() for s in load_samples(synthetic / "samples.jsonl")[:2]]
    records = good + [
        {"id": "silent", "media": {"video": "no_audio.mp4"}},
        {"id": "truncated", "media": {"video": "truncated.mp4"}},
        {"id": "empty", "media": {"video": "empty.mp4"}},
        {"id": "text", "media": {"video": "not_media.mp4"}},
        {"id": "gone", "media": {"video": "missing.mp4"}},
        {"id": "typo", "media": {"video": "x.mp4"}, "targets": {"valence": "high"}},
        {"id": "still", "media": {"image": "still.png"}},
    ]
    (root / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return root / "samples.jsonl", [r["id"] for r in good]


def test_prep_reports_each_bad_input_and_keeps_going(tmp_path, synthetic, media_dir, encoders):
    input, good_ids = mixed_input(tmp_path, synthetic, media_dir)
    report = prep(encoders, input, tmp_path / "out")
    out = {s.id: s for s in load_samples(tmp_path / "out/samples.jsonl")}
    written = json.loads((tmp_path / "out/report.json").read_text())

    assert set(out) == set(good_ids) | {"silent", "still"}
    for sample_id in good_ids:
        sample = out[sample_id]
        assert set(sample.features) == {"audio", "face", "video", "frame"}
        assert len(sample.faces.frame_times) == 8
        for modality, ref in sample.features.items():
            tensor = load_feature(ref, tmp_path / "out")
            assert list(tensor.shape) == ref.shape and str(tensor.dtype) == "torch.float16", modality
            assert tensor.abs().sum() > 0, f"{modality} features are all zeros"
        assert out[sample_id].targets.emotion  # labels pass through untouched

    problems = {p["id"] if p["id"] else f"line{p['line']}": p for p in written["problems"]}
    reasons = {k: {(i["modality"], i["reason"]) for i in p["issues"]} for k, p in problems.items()}
    # A video without audio keeps its visual features; the gradient frames have no face.
    assert problems["silent"]["status"] == "partial"
    assert reasons["silent"] == {("audio", "no_audio"), ("face", "no_face")}
    assert set(out["silent"].features) == {"video", "frame"}
    assert out["silent"].faces.missing == list(range(8))
    assert problems["still"]["status"] == "partial" and ("video", "no_video") in reasons["still"]
    assert {r for _, r in reasons["truncated"]} == {"unreadable"}
    assert {r for _, r in reasons["empty"]} == {"empty"}
    assert {r for _, r in reasons["text"]} == {"not_media"}
    assert {r for _, r in reasons["gone"]} == {"missing_file"}
    assert reasons["line8"] == {("*", "bad_field")}
    assert "targets.valence" in problems["line8"]["issues"][0]["message"]
    for sample_id in ["truncated", "empty", "text", "gone"]:
        assert problems[sample_id]["status"] == "failed"
    assert written["counts"] == {"ok": 2, "partial": 2, "failed": 5}
    assert report.counts == written["counts"]


def test_cache_is_reused_and_invalidated_by_settings(tmp_path, synthetic, encoders):
    input = synthetic / "samples.jsonl"
    cache = tmp_path / "cache"

    def keys(out):
        return {(s.id, m): r.key for s in load_samples(out / "samples.jsonl") for m, r in s.features.items()}

    base = prep(encoders, input, tmp_path / "a", f"feature_cache={cache}")
    first = keys(tmp_path / "a")
    entries = sorted(cache.rglob("*.safetensors"))
    mtimes = [p.stat().st_mtime_ns for p in entries]

    again = prep(encoders, input, tmp_path / "b", f"feature_cache={cache}")
    assert keys(tmp_path / "b") == first
    assert [p.stat().st_mtime_ns for p in entries] == mtimes, "unchanged settings must hit the cache"
    assert again.frames_decoded == 0 and base.frames_decoded > 0

    prep(encoders, input, tmp_path / "c", f"feature_cache={cache}", "media.video.num_frames=4")
    frames_changed = keys(tmp_path / "c")
    for (sample_id, modality), key in first.items():
        assert (frames_changed[(sample_id, modality)] == key) == (modality == "audio"), modality

    prep(encoders, input, tmp_path / "d", f"feature_cache={cache}", "encoders.audio.layer=1")
    layer_changed = keys(tmp_path / "d")
    for (sample_id, modality), key in first.items():
        assert (layer_changed[(sample_id, modality)] == key) == (modality != "audio"), modality

    prep(encoders, input, tmp_path / "e", f"feature_cache={cache}", "media.faces.margin=0.5")
    margin_changed = keys(tmp_path / "e")
    for (sample_id, modality), key in first.items():
        assert (margin_changed[(sample_id, modality)] == key) == (modality != "face"), modality


def test_two_workers_match_one(tmp_path, synthetic, encoders):
    input = synthetic / "samples.jsonl"
    prep(encoders, input, tmp_path / "one")
    prep(encoders, input, tmp_path / "two", "workers=2", f"feature_cache={tmp_path / 'cache2'}")
    one = {s.id: s for s in load_samples(tmp_path / "one/samples.jsonl")}
    two = {s.id: s for s in load_samples(tmp_path / "two/samples.jsonl")}
    assert one.keys() == two.keys()
    for sample_id in one:
        assert {m: r.key for m, r in one[sample_id].features.items()} == {m: r.key for m, r in two[sample_id].features.items()}
        for m, ref in one[sample_id].features.items():
            assert (load_feature(ref, tmp_path / "one") == load_feature(two[sample_id].features[m], tmp_path / "two")).all()


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path, encoders):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    samples = generate_dataset(tmp_path / "data", SyntheticConfig(num_per_class=6, seed=5))
    ids = [s.id for s in samples]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "emoreason.cli", "prep", "--config", str(CONFIG)]
    cmd += prep_overrides(encoders, tmp_path / "data/samples.jsonl", out)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    status = out / "status.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if status.exists() and status.read_text().count("\n") >= 4:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = [json.loads(line)["id"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert 4 <= len(done_before) < len(ids), "the kill must land mid-batch"
    # A writer killed mid-line leaves a torn tail; resume must cut it, not keep or duplicate it.
    with open(out / "samples.jsonl", "a") as f:
        f.write('{"id": "syn_00')

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    final = [json.loads(line)["id"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted(final) == sorted(ids) and len(final) == len(set(final))
    assert final[: len(done_before)] == done_before
    report = json.loads((out / "report.json").read_text())
    assert report["already_done"] == len(done_before)
    assert report["processed_now"] == len(ids) - len(done_before)
    assert report["counts"]["ok"] + report["counts"]["partial"] == len(ids)


def test_manifest_inputs(tmp_path, synthetic, encoders):
    clips = sorted(c.name for c in (synthetic / "clips").glob("*.mp4"))[:2]
    audio_only = f"encoders={{audio: {{model: {encoders['audio']}}}}}"
    clip_root = f"data_root={synthetic / 'clips'}"

    (tmp_path / "list.txt").write_text("".join(f"{c}\n" for c in clips) + "notes.docx\n")
    report = prep(encoders, tmp_path / "list.txt", tmp_path / "from_list", clip_root, audio_only)
    assert {s.id for s in load_samples(tmp_path / "from_list/samples.jsonl")} == {c[:-4] for c in clips}
    assert report.counts == {"ok": 2, "partial": 0, "failed": 1}  # notes.docx is no media file

    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text("id,video\n" + "".join(f"m{i},{c}\n" for i, c in enumerate(clips)) + "m9,\n")
    report = prep(encoders, csv_path, tmp_path / "from_csv", clip_root, audio_only)
    assert {s.id for s in load_samples(tmp_path / "from_csv/samples.jsonl")} == {"m0", "m1"}
    assert report.counts["failed"] == 1  # m9 names no media


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # fields from 3 (state) on


def _descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every process below `pid`, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _proc_stat(int(entry.name))):
            parents[int(entry.name)] = (int(fields[1]), fields[19])
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, started) in parents.items():
            if ppid == parent and child not in found:
                found[child] = started
                frontier.append(child)
    return found


def _still_running(pid: int, started: str) -> bool:
    fields = _proc_stat(pid)
    return fields is not None and fields[0] not in ("Z", "X") and fields[19] == started


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_and_forkserver_die_with_a_killed_prep(tmp_path, synthetic, encoders):
    """kill -9 of the main process only (as the OOM killer does): no worker, nor the forkserver, stays alive."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "emoreason.cli", "prep", "--config", str(CONFIG)]
    cmd += prep_overrides(encoders, synthetic / "samples.jsonl", out, "workers=2")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    below: dict[int, str] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            below = _descendants(proc.pid)
            # forkserver + resource tracker, and the two workers the forkserver forked
            if len(below) >= 4 and (out / "status.jsonl").exists():
                break
            time.sleep(0.05)
        assert proc.poll() is None, "prep finished before it could be killed"
        below = _descendants(proc.pid)
        assert len(below) >= 4, below
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
        proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(_still_running(p, s) for p, s in below.items()):
            time.sleep(0.1)
        survivors = [p for p, s in below.items() if _still_running(p, s)]
        assert not survivors, f"still alive 10 s after the kill: {survivors}"
    finally:
        if proc.poll() is None:
            below = {**below, **_descendants(proc.pid)}
            proc.kill()
            proc.wait()
        for pid, started in below.items():  # a failed run must not leave its workers behind either
            if _still_running(pid, started):
                os.kill(pid, signal.SIGKILL)


def test_prep_names_what_is_wrong_with_each_path(tmp_path, media_dir, encoders):
    """Folders, fifos, symlinks out of the data root, audio-only clips, decompression bombs, narrow clips."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ["audio_only.mp4", "bomb.png", "tiny16.mp4", "h264_aac.mp4"]:
        shutil.copy(media_dir / name, root / name)
    (root / "folder.mp4").mkdir()
    os.mkfifo(root / "fifo.mp4")
    os.symlink(media_dir / "h264_aac.mp4", root / "escape.mp4")  # a real clip, outside the data root
    (root / "inner").mkdir()
    os.symlink(root / "h264_aac.mp4", root / "inner" / "link.mp4")  # a symlink that stays inside is fine
    records = {
        "folder": {"video": "folder.mp4"},
        "fifo": {"video": "fifo.mp4"},
        "escape": {"video": "escape.mp4"},
        "inside": {"video": "inner/link.mp4"},
        "audio_only": {"video": "audio_only.mp4"},
        "bomb": {"image": "bomb.png"},
        "narrow": {"video": "tiny16.mp4"},
    }
    (root / "samples.jsonl").write_text("".join(json.dumps({"id": k, "media": v}) + "\n" for k, v in records.items()))
    prep(encoders, root / "samples.jsonl", tmp_path / "out")
    problems = {p["id"]: p for p in json.loads((tmp_path / "out/report.json").read_text())["problems"]}
    reasons = {k: {i["modality"]: i["reason"] for i in p["issues"]} for k, p in problems.items()}
    messages = {k: " ".join(i["message"] for i in p["issues"]) for k, p in problems.items()}

    for sample_id in ["folder", "fifo"]:
        assert set(reasons[sample_id].values()) == {"not_a_file"} and problems[sample_id]["status"] == "failed"
    assert "a directory" in messages["folder"] and "a fifo" in messages["fifo"]
    assert set(reasons["escape"].values()) == {"outside_root"} and "outside the data root" in messages["escape"]
    assert reasons["inside"] == {"face": "no_face"}  # read through the symlink; the gradient clip has no face
    # The audio track is used; the visual modalities say the file has no video stream.
    assert reasons["audio_only"] == {"face": "no_video", "frame": "no_video", "video": "no_video"}
    assert problems["audio_only"]["status"] == "partial" and "audio only" in messages["audio_only"]
    assert reasons["bomb"]["frame"] == "too_large" and problems["bomb"]["status"] == "failed"
    assert reasons["narrow"] == {"audio": "no_audio", "face": "no_face"} and problems["narrow"]["status"] == "partial"
    for text in messages.values():
        assert "/github/" not in text and ".cc:" not in text  # no decoder build paths


def test_a_garbled_line_in_samples_jsonl_is_removed_and_its_sample_redone(tmp_path, synthetic, encoders, capsys):
    out = tmp_path / "out"
    prep(encoders, synthetic / "samples.jsonl", out)
    lines = (out / "samples.jsonl").read_text().splitlines(keepends=True)
    garbled = json.loads(lines[1])["id"]
    lines[1] = lines[1][:20] + "\x00\x00 a bad disk block\n"
    (out / "samples.jsonl").write_text("".join(lines))
    capsys.readouterr()

    report = prep(encoders, synthetic / "samples.jsonl", out)
    assert "samples.jsonl line 2: not valid JSON" in capsys.readouterr().err
    assert report.processed() == 1 and report.already_done == len(lines) - 1
    ids = [s.id for s in load_samples(out / "samples.jsonl")]
    assert ids[:-1] == [json.loads(line)["id"] for i, line in enumerate(lines) if i != 1]  # the good lines, kept in order
    assert len(ids) == len(set(ids)) == len(lines) and ids[-1] == garbled
