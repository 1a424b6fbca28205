import pytest
import torch
from safetensors.torch import save_file

from emoreason.features.cache import (
    HASH_METADATA_KEY,
    FeatureCache,
    FeatureFileError,
    check_feature_refs,
    load_feature,
    read_feature_file,
)
from emoreason.features.hashing import file_content_hash, settings_hash
from emoreason.schema import FeatureRef
from feature_files import FP16_NAN, FP16_ONE, break_header, overwrite_data


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


def entry(tmp_path, features=None):
    cache = FeatureCache(tmp_path / "cache")
    key = cache.make_key("audio", "m" * 64, "enc", "fp", {})
    features = torch.full((3, 4), 0.5) if features is None else features
    return cache, key, cache.put("audio", key, features, {"id": "clip_7"})


def test_entries_carry_a_hash_and_verify_on_read(tmp_path):
    cache, key, path = entry(tmp_path)
    tensor, metadata = read_feature_file(path, [3, 4])
    assert metadata["id"] == "clip_7" and len(metadata[HASH_METADATA_KEY]) == 64
    assert torch.equal(cache.get("audio", key), tensor)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: overwrite_data(p, 2, FP16_NAN), "1 of 12 values are NaN or infinite"),
        (lambda p: overwrite_data(p, 2, FP16_ONE), "content hash mismatch"),
        (break_header, "unreadable safetensors file"),
        (lambda p: p.write_bytes(p.read_bytes()[:-6]), "unreadable safetensors file"),
    ],
    ids=["nan", "changed_value", "bad_header", "truncated"],
)
def test_damaged_entry_is_named_and_never_used(tmp_path, damage, reason):
    cache, key, path = entry(tmp_path)
    damage(path)
    with pytest.raises(FeatureFileError, match=reason) as info:
        read_feature_file(path)
    assert str(path) in str(info.value)
    assert cache.get("audio", key) is None  # prep recomputes it
    ref = cache.ref("audio", key, "enc", [3, 4], tmp_path)
    with pytest.raises(FeatureFileError, match=f"sample clip_7\\).*{reason}"):
        load_feature(ref, tmp_path, sample_id="clip_7")


def test_shape_must_match_the_reference(tmp_path):
    _, _, path = entry(tmp_path)
    with pytest.raises(FeatureFileError, match=r"shape \[3, 4\], the sample's reference says \[5, 4\]"):
        read_feature_file(path, [5, 4])


def test_entry_without_hash_is_still_checked_for_finite_values(tmp_path):
    path = tmp_path / "old.safetensors"
    save_file({"features": torch.ones(2, 2, dtype=torch.float16)}, str(path))
    assert read_feature_file(path)[0].shape == (2, 2)
    save_file({"features": torch.tensor([[1.0, float("nan")]], dtype=torch.float16)}, str(path))
    with pytest.raises(FeatureFileError, match="NaN"):
        read_feature_file(path)


def test_put_refuses_non_finite_features(tmp_path):
    with pytest.raises(ValueError, match="NaN or infinite"):
        entry(tmp_path, torch.tensor([[1.0, 1e6]]))  # beyond fp16's range: inf once cached
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_check_feature_refs_reads_each_file_once_and_lists_its_samples(tmp_path):
    cache, key, path = entry(tmp_path)
    ref = cache.ref("audio", key, "enc", [3, 4], tmp_path)
    good_key = cache.make_key("audio", "g" * 64, "enc", "fp", {})
    cache.put("audio", good_key, torch.zeros(3, 4), {"id": "b"})
    good = cache.ref("audio", good_key, "enc", [3, 4], tmp_path)
    assert check_feature_refs([("a", "audio", ref), ("b", "audio", good)], tmp_path) == []
    overwrite_data(path, 0, FP16_NAN)
    missing = FeatureRef(path="cache/none.safetensors", key="x", encoder="enc", shape=[1, 1])
    bad = check_feature_refs([("a", "audio", ref), ("b", "audio", good), ("dup", "audio", ref), ("c", "face", missing)], tmp_path)
    assert [(b.path, b.refs) for b in bad] == [(path, [("a", "audio"), ("dup", "audio")]), (tmp_path / missing.path, [("c", "face")])]
    assert "NaN" in bad[0].describe() and "a (audio), dup (audio)" in bad[0].describe()
