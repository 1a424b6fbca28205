"""`emoreason prep` with engine: ray on a local Ray cluster: the local engine's files, bit for bit, and resume."""

import json
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from emoreason.config import ConfigError, load_config  # noqa: E402
from emoreason.data_prep.prep_config import PrepConfig  # noqa: E402
from emoreason.data_prep.runner import run_prep  # noqa: E402
from test_prep import CONFIG, mixed_input, prep_overrides  # noqa: E402


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    from emoreason.encoders.tiny import build_tiny_encoders

    return build_tiny_encoders(tmp_path_factory.mktemp("encoders"))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset

    root = tmp_path_factory.mktemp("synthetic")
    generate_dataset(root, SyntheticConfig(num_per_class=2, seed=3))
    return root


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, synthetic, media_dir):
    """The eight clips of a synthetic set and every kind of bad input (test_prep's)."""
    from emoreason.schema import load_samples

    root = tmp_path_factory.mktemp("mixed")
    input, good_ids = mixed_input(root, synthetic, media_dir)
    rest = [s for s in load_samples(synthetic / "samples.jsonl") if s.id not in good_ids]
    with open(input, "a") as f:
        f.writelines(json.dumps(s.to_json()) + "\n" for s in rest)
    return input


@pytest.fixture(scope="module")
def local_out(mixed, encoders, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "out"
    run_prep(load_config(PrepConfig, CONFIG, prep_overrides(encoders, mixed, out)))
    return out


@pytest.fixture(scope="module")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def ray_prep(encoders, input, out, *extra):
    return run_prep(load_config(PrepConfig, CONFIG, prep_overrides(encoders, input, out, "engine=ray", *extra)))


def feature_bytes(out: Path) -> dict[tuple[str, str], bytes]:
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return {(r["id"], m): (out / ref["path"]).read_bytes() for r in records for m, ref in r["features"].items()}


def comparable_report(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    return {k: report[k] for k in ("total", "counts", "reasons", "problems")}


def test_unreachable_address_is_a_clear_error(mixed, encoders, tmp_path):
    if ray.is_initialized():
        pytest.skip("a Ray session is already open in this process: the address is not used")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"key 'ray.address': no Ray cluster answers at 127.0.0.1:9.*ray start --head"):
        ray_prep(encoders, mixed, tmp_path / "out", "ray.address=127.0.0.1:9")
    assert time.perf_counter() - started < 60
    with pytest.raises(ConfigError, match=r"key 'ray.address': 'not an address' is no Ray address"):
        ray_prep(encoders, mixed, tmp_path / "out2", "ray.address=not an address")


@pytest.mark.parametrize("pools", [[], ["ray.pool_per_encoder=true"]], ids=["one_pool_for_cpu_encoders", "pool_per_encoder"])
def test_ray_engine_writes_what_the_local_engine_writes(cluster, mixed, encoders, local_out, tmp_path, pools):
    out = tmp_path / "ray"
    ray_prep(encoders, mixed, out, *pools)
    for name in ("samples.jsonl", "status.jsonl", "featurizer.json"):
        assert (out / name).read_text() == (local_out / name).read_text(), name
    local_features = feature_bytes(local_out)
    assert feature_bytes(out) == local_features and len(local_features) == 8 * 4 + 3  # and the silent clip's two, the still's one
    assert comparable_report(out) == comparable_report(local_out)


def test_a_cluster_too_small_for_the_actors_is_refused(cluster, mixed, encoders, tmp_path):
    with pytest.raises(ConfigError, match=r"key 'ray.cpus_per_actor': the job needs 3 CPU at once but the Ray cluster has 2"):
        ray_prep(encoders, mixed, tmp_path / "out", "ray.cpus_per_actor=2")  # one actor for the four CPU encoders
    with pytest.raises(ConfigError, match=r"key 'ray.cpus_per_actor': the job needs 5 CPU at once but the Ray cluster has 2"):
        ray_prep(encoders, mixed, tmp_path / "out", "ray.cpus_per_actor=1", "ray.pool_per_encoder=true")
    with pytest.raises(ConfigError, match=r"key 'ray.gpus_per_actor': the job needs 4 GPU"):
        ray_prep(encoders, mixed, tmp_path / "out", "ray.gpus_per_actor=1")


class _FakeRay:
    def __init__(self, **resources):
        self.resources = resources

    def cluster_resources(self):
        return self.resources


@pytest.mark.parametrize(("resources", "extra", "pools", "decode_cpus"), [
    ({"CPU": 2}, [], [["audio", "face", "video", "frame"]], 0.875),  # two decode tasks beside the one actor's 0.25
    ({"CPU": 2}, ["ray.pool_per_encoder=true"], [["audio"], ["face"], ["video"], ["frame"]], 1.0),
    ({"CPU": 64, "GPU": 4}, [], [["audio"], ["face"], ["video"], ["frame"]], 1.0),  # actors on GPUs: a pool each
    ({"CPU": 9, "GPU": 4}, ["ray.gpus_per_actor=0", "ray.actors_per_encoder=2"], [["audio", "face", "video", "frame"]], 8.5 / 9),
])
def test_the_plan_shares_the_cpus_the_actors_leave_among_decode_tasks(encoders, tmp_path, resources, extra, pools, decode_cpus):
    from emoreason.data_prep.extract import prep_featurizer
    from emoreason.data_prep.ray_prep import _plan

    cfg = load_config(PrepConfig, CONFIG, prep_overrides(encoders, tmp_path / "in.jsonl", tmp_path / "out", "engine=ray", *extra))
    plan = _plan(_FakeRay(**resources), cfg, prep_featurizer(cfg, tmp_path / "out").forward_groups())
    assert plan.pools == pools and plan.decode_cpus == pytest.approx(decode_cpus)


def _encoder_actor_processes():
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any("_EncoderActor" in part for part in (proc.info["cmdline"] or [])):
            found.append(proc)
    return found


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_a_rerun_has_every_sample_once(cluster, mixed, encoders, local_out, tmp_path):
    out = tmp_path / "ray"
    errors: list[BaseException] = []

    def run() -> None:
        try:
            ray_prep(encoders, mixed, out, "ray.batch_size=1")
        except BaseException as exc:  # the run may stop once Ray's retries are spent; the rerun must recover
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 300
    while thread.is_alive() and killed is None and time.monotonic() < deadline:
        written = (out / "samples.jsonl").read_text().count("\n") if (out / "samples.jsonl").exists() else 0
        actors = _encoder_actor_processes()
        if written >= 1 and actors:
            killed = actors[0].pid
            actors[0].kill()  # SIGKILL, as the OOM killer would
        time.sleep(0.2)
    thread.join(600)
    assert killed is not None, "no encoder actor was found to kill before the run ended"
    assert not thread.is_alive()
    print(f"killed actor {killed}; the first run {'stopped: ' + repr(errors[0])[:300] if errors else 'completed (retried)'}")

    ray_prep(encoders, mixed, out)
    ids = [json.loads(line)["id"] for line in (out / "samples.jsonl").read_text().splitlines()]
    status_ids = [json.loads(line)["id"] for line in (out / "status.jsonl").read_text().splitlines()]
    local_ids = [json.loads(line)["id"] for line in (local_out / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(local_ids) and len(set(ids)) == len(ids)
    # A failed sample is retried on every rerun (as by the local engine), so only its status line repeats.
    assert set(status_ids) == set(json.loads(line)["id"] for line in (local_out / "status.jsonl").read_text().splitlines())
    assert len(status_ids) - len(set(status_ids)) <= 4  # truncated, empty, text, gone
    assert feature_bytes(out) == feature_bytes(local_out)
    assert json.loads((out / "report.json").read_text())["counts"] == json.loads((local_out / "report.json").read_text())["counts"]
