import torch

from emoreason.features.cache import FeatureCache, load_feature
from emoreason.features.hashing import file_content_hash, settings_hash


def test_put_get_is_fp16_and_atomic(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    key = cache.make_key("audio", "m" * 64, "enc", "fp", {"layer": -1})
    assert cache.get("audio", key) is None
    features = torch.randn(5, 8)
    path = cache.put("audio", key, features, {"id": "a"})
    assert path == cache.path_for("audio", key) and path.parent.parent.name == "audio"
    assert not list(path.parent.glob("*.tmp"))
    got = cache.get("audio", key)
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), features, atol=1e-2, rtol=1e-2)
    ref = cache.ref("audio", key, "enc", [5, 8], tmp_path)
    assert ref.path.startswith("cache/audio/")
    assert torch.equal(load_feature(ref, tmp_path), got)


def test_key_covers_every_input():
    base = dict(modality="face", media_hash="a", encoder="e", encoder_fingerprint="f", settings={"frames": 8, "pool": "mean"})
    key = FeatureCache.make_key(**base)
    changed = [
        {"modality": "frame"},
        {"media_hash": "b"},
        {"encoder": "e2"},
        {"encoder_fingerprint": "f2"},
        {"settings": {"frames": 16, "pool": "mean"}},
        {"settings": {"frames": 8, "pool": "cls"}},
    ]
    keys = {FeatureCache.make_key(**(base | c)) for c in changed}
    assert key not in keys and len(keys) == len(changed)
    # Order of settings does not matter.
    assert FeatureCache.make_key(**(base | {"settings": {"pool": "mean", "frames": 8}})) == key


def test_corrupt_entry_is_recomputed_not_trusted(tmp_path):
    cache = FeatureCache(tmp_path)
    path = cache.path_for("audio", "ab" * 32)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    assert cache.get("audio", "ab" * 32) is None


def test_content_hash_follows_bytes(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"one")
    first = file_content_hash(a)
    a.write_bytes(b"second")
    assert file_content_hash(a) != first
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1})
