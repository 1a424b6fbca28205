"""Checkpoint folders: published complete, and resume skips any that is not (no training here)."""

from __future__ import annotations

import json

from emoreason.train.checkpoints import (
    MARKER_FILE,
    incomplete_reason,
    last_complete_checkpoint,
    publish,
    remove_stale_staging,
    staging_root,
)


def stage(run_dir, step: int, files: dict[str, bytes]):
    """Write files the way the Trainer does during a save: into the staging folder's checkpoint-<step>/."""
    folder = staging_root(run_dir, step) / f"checkpoint-{step}"
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


FILES = {
    "emoreason_model.json": b"{}",
    "projectors.safetensors": b"p" * 100,
    "adapter/adapter_model.safetensors": b"a" * 50,
    "trainer_state.json": b"{}",
    "optimizer.pt": b"o" * 300,
}


def test_publish_renames_a_complete_folder_into_place(tmp_path):
    stage(tmp_path, 4, FILES)
    target = publish(tmp_path, 4)
    assert target == tmp_path / "checkpoint-4" and incomplete_reason(target) is None
    marker = json.loads((target / MARKER_FILE).read_text())
    assert marker == {"step": 4, "files": {rel: len(data) for rel, data in sorted(FILES.items())}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]


def test_publish_replaces_a_leftover_of_the_same_step(tmp_path):
    (tmp_path / "checkpoint-4").mkdir()
    (tmp_path / "checkpoint-4" / "emoreason_model.json").write_text("stale")
    stage(tmp_path, 4, FILES)
    publish(tmp_path, 4)
    assert (tmp_path / "checkpoint-4" / "optimizer.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]


def test_resume_skips_the_half_written_newest_checkpoint(tmp_path, capsys):
    stage(tmp_path, 2, FILES)
    publish(tmp_path, 2)
    # What a kill in the middle of the Trainer's in-place save left behind: the model files, no adapter yet.
    partial = tmp_path / "checkpoint-3"
    partial.mkdir()
    (partial / "emoreason_model.json").write_text("{}")
    (partial / "projectors.safetensors").write_bytes(b"p" * 100)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    err = capsys.readouterr().err
    assert f"skipping incomplete checkpoint {partial}: no {MARKER_FILE}" in err


def test_a_file_changed_after_the_marker_makes_the_checkpoint_incomplete(tmp_path, capsys):
    for step in (1, 2, 3):
        stage(tmp_path, step, FILES)
        publish(tmp_path, step)
    (tmp_path / "checkpoint-3" / "optimizer.pt").write_bytes(b"o" * 10)  # truncated
    (tmp_path / "checkpoint-2" / "adapter" / "adapter_model.safetensors").unlink()  # a kill during rotation
    (tmp_path / "checkpoint-10").write_text("a file, not a checkpoint folder")
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-1")
    err = capsys.readouterr().err
    assert "checkpoint-3: optimizer.pt has 10 bytes, the marker says 300" in err
    assert "checkpoint-2: adapter/adapter_model.safetensors is missing" in err


def test_no_complete_checkpoint_means_a_fresh_start(tmp_path):
    stage(tmp_path, 5, FILES)  # staged, never published: not a checkpoint
    assert last_complete_checkpoint(tmp_path) is None
    remove_stale_staging(tmp_path)
    assert list(tmp_path.iterdir()) == []
