"""`emoreason infer --engine ray --replicas 2` on a local Ray cluster: the local run's predictions, and resume."""

import pytest

ray = pytest.importorskip("ray")

from serving_models import exported_model_dir  # noqa: E402

from emoreason.serving.infer import main  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def infer(*args) -> int:
    return main([str(a) for a in args])


@pytest.mark.slow
def test_two_replicas_write_the_local_predictions_and_resume(cluster, tiny_data, tmp_path_factory, tmp_path, capsys):
    exported = exported_model_dir(tiny_data, tmp_path_factory)
    common = ["--model", exported, "--input", tiny_data.heldout, "--feature-source", "cache", "--max-tokens", 8,
              "--batch-size", 4]
    local = tmp_path / "local.jsonl"
    assert infer(*common, "--out", local) == 0
    lines = local.read_text().splitlines()
    assert len(lines) == 40

    on_ray = tmp_path / "ray.jsonl"
    # As if an earlier run was killed after two chunks and a torn line: the rerun adds only what is missing.
    on_ray.write_text("\n".join(lines[:8]) + "\n" + lines[8][:10])
    assert infer(*common, "--out", on_ray, "--engine", "ray", "--replicas", 2) == 0
    assert on_ray.read_text() == local.read_text()
    assert "32 predicted" in capsys.readouterr().out


def test_too_many_replicas_for_the_cluster_is_refused(cluster, tmp_path, capsys):
    from emoreason.schema import write_samples, Sample

    write_samples(tmp_path / "in.jsonl", [Sample.model_validate({"id": "a", "media": {"video": "a.mp4"}})])
    code = infer("--model", tmp_path, "--input", tmp_path / "in.jsonl", "--out", tmp_path / "out.jsonl", "--labels", "x",
                 "--engine", "ray", "--replicas", 3)
    assert code == 2
    assert "key '--replicas': the job needs 3 CPU at once but the Ray cluster has 2" in capsys.readouterr().err
