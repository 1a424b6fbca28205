"""Projectors and pre-fusion: shapes, masks, padding isolation, empty items, gradients, config errors."""

from __future__ import annotations

import pytest
import torch

from emoreason.config import ConfigError, config_from_dict
from emoreason.model.prefusion import PreFusion, PrefusionConfig
from emoreason.model.projectors import PROJECTOR_KINDS, ProjectorConfig, build_projector

D_IN, D_LLM, K = 12, 16, 3
LENGTHS = [5, 2, 0]  # a full item, a padded one, one without this modality
POOLED = ("attn_pool", "resampler", "qformer")
# token_concat needs token counts divisible by its concat: its own tests are in test_connectors.py.
KINDS = tuple(k for k in PROJECTOR_KINDS if k != "token_concat")


def make_config(kind: str) -> ProjectorConfig:
    return ProjectorConfig(kind=kind, num_tokens=K if kind in POOLED else None, hidden_size=8, num_heads=2)


def make_projector(kind: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_projector(make_config(kind), D_IN, D_LLM).eval()


def padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), D_IN, generator=generator)  # [b, t, d_in]
    mask = torch.arange(max(lengths)).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [b, t]
    return features, mask


@pytest.mark.parametrize("kind", KINDS)
def test_shapes_masks_and_counts(kind):
    projector = make_projector(kind)
    features, mask = padded_batch(LENGTHS)
    tokens, out_mask = projector(features, mask)
    pooled = kind in POOLED
    assert tokens.shape == (3, K if pooled else max(LENGTHS), D_LLM)
    assert out_mask.shape == tokens.shape[:2] and out_mask.dtype == torch.bool
    assert out_mask.sum(dim=1).tolist() == [projector.num_output_tokens(n) for n in LENGTHS]
    assert [projector.num_output_tokens(n) for n in LENGTHS] == ([K, K, 0] if pooled else LENGTHS)
    assert torch.isfinite(tokens).all()
    assert (tokens[~out_mask] == 0).all()  # positions without a real token are zeros, never garbage


@pytest.mark.parametrize("kind", KINDS)
def test_padded_values_do_not_reach_the_output(kind):
    projector = make_projector(kind)
    features, mask = padded_batch(LENGTHS)
    noisy = torch.where(mask.unsqueeze(-1), features, 1e4 * torch.randn_like(features))
    noisy[2, 0] = float("nan")  # even NaN padding stays out
    with torch.no_grad():
        clean_tokens, clean_mask = projector(features, mask)
        noisy_tokens, noisy_mask = projector(noisy, mask)
    assert torch.equal(clean_tokens, noisy_tokens) and torch.equal(clean_mask, noisy_mask)


@pytest.mark.parametrize("kind", KINDS)
def test_padding_length_does_not_change_an_item(kind):
    # Zeroed padding still has keys (biases); only a correct attention mask makes the padded item match.
    projector = make_projector(kind)
    features, mask = padded_batch(LENGTHS)
    with torch.no_grad():
        batched, batched_mask = projector(features, mask)
        alone, alone_mask = projector(features[1:2, :2], mask[1:2, :2])
    torch.testing.assert_close(batched[1][batched_mask[1]], alone[0][alone_mask[0]])


@pytest.mark.parametrize("kind", KINDS)
def test_batch_without_any_token(kind):
    projector = make_projector(kind)
    for t in (0, 4):
        tokens, out_mask = projector(torch.randn(2, t, D_IN), torch.zeros(2, t, dtype=torch.bool))
        assert not out_mask.any() and torch.isfinite(tokens).all()
        assert tokens.shape[1] == (K if kind in POOLED else t)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_reach_every_parameter(kind):
    projector = make_projector(kind).train()
    features, mask = padded_batch(LENGTHS)  # the empty item must not turn gradients into NaN
    tokens, out_mask = projector(features, mask)
    tokens[out_mask].pow(2).sum().backward()
    for name, param in projector.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_mlp_depth_and_default_width():
    mlp = build_projector(ProjectorConfig(kind="mlp"), D_IN, D_LLM)
    linears = [m for m in mlp.modules() if isinstance(m, torch.nn.Linear)]
    # LLaVA-1.5's mlp2x_gelu: d_in -> d_llm -> d_llm
    assert [(m.in_features, m.out_features) for m in linears] == [(D_IN, D_LLM), (D_LLM, D_LLM)]
    deep = build_projector(ProjectorConfig(kind="mlp", depth=3, hidden_size=10), D_IN, D_LLM)  # heads unused
    assert sum(isinstance(m, torch.nn.Linear) for m in deep.modules()) == 3


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"kind": "conv"}, "kind"),
        ({"kind": "attn_pool"}, "num_tokens"),
        ({"kind": "resampler", "num_tokens": 0}, "num_tokens"),
        ({"kind": "linear", "num_tokens": 4}, "num_tokens"),
        ({"kind": "mlp", "depth": 0}, "depth"),
        ({"kind": "mlp", "hidden_size": 0}, "hidden_size"),
        ({"kind": "attn_pool", "num_tokens": 2, "hidden_size": 10, "num_heads": 4}, "num_heads"),
    ],
)
def test_config_errors_name_the_key(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        ProjectorConfig(**fields)


def test_config_from_yaml_mapping():
    assert config_from_dict(ProjectorConfig, {"kind": "resampler", "num_tokens": 8}).num_tokens == 8
    with pytest.raises(ConfigError, match="x.yaml: key 'num_tokens'"):
        config_from_dict(ProjectorConfig, {"kind": "attn_pool"}, source="x.yaml")


def test_heads_must_divide_the_resolved_width():
    # hidden_size null resolves to d_llm only when the LLM is known.
    with pytest.raises(ConfigError, match="key 'num_heads'"):
        build_projector(ProjectorConfig(kind="resampler", num_tokens=2, num_heads=5), D_IN, D_LLM)


# Pre-fusion


def make_prefusion(num_tokens: int = 2) -> PreFusion:
    torch.manual_seed(0)
    return PreFusion(PrefusionConfig(enabled=True, num_tokens=num_tokens, num_heads=2), D_LLM).eval()


def projected(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    t = max(lengths)
    tokens = torch.randn(len(lengths), t, D_LLM, generator=generator)  # [b, t, D]
    mask = torch.arange(t).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)  # [b, t]
    return tokens, mask


def test_prefusion_needs_every_modality_per_item():
    fusion = make_prefusion()
    # item 0 has both, item 1 audio only, item 2 video only, item 3 neither
    inputs = {"audio": projected([3, 2, 0, 0], seed=1), "video": projected([4, 0, 1, 0], seed=2)}
    fused, fused_mask = fusion(inputs)
    assert fused.shape == (4, 2, D_LLM)
    assert fused_mask.tolist() == [[True, True], [False, False], [False, False], [False, False]]
    assert torch.isfinite(fused).all() and (fused[~fused_mask] == 0).all()


def test_prefusion_counts():
    fusion = make_prefusion(num_tokens=3)
    assert fusion.num_output_tokens({"audio": 4, "video": 1}) == 3
    assert fusion.num_output_tokens({"audio": 4, "video": 0}) == 0
    assert fusion.num_output_tokens({"audio": 4, "face": 2}) == 0  # video absent
    assert fusion.modalities == ["audio", "video"]


def test_prefusion_ignores_padding_and_rejects_a_missing_modality():
    fusion = make_prefusion()
    audio, video = projected([3, 1], seed=1), projected([2, 2], seed=2)
    noisy_audio = (torch.where(audio[1].unsqueeze(-1), audio[0], 1e4), audio[1])
    with torch.no_grad():
        clean, _ = fusion({"audio": audio, "video": video})
        noisy, _ = fusion({"audio": noisy_audio, "video": video})
    assert torch.equal(clean, noisy)
    with torch.no_grad():
        alone, _ = fusion({"audio": (audio[0][1:, :1], audio[1][1:, :1]), "video": (video[0][1:], video[1][1:])})
    torch.testing.assert_close(clean[1], alone[0])
    with pytest.raises(ValueError, match="video"):
        fusion({"audio": audio})


def test_gradients_flow_through_prefusion_into_projectors():
    audio_projector, video_projector = make_projector("mlp"), make_projector("attn_pool", seed=1)
    fusion = make_prefusion().train()
    audio_features, audio_mask = padded_batch([5, 2, 0], seed=1)
    video_features, video_mask = padded_batch([1, 3, 4], seed=2)
    fused, fused_mask = fusion({"audio": audio_projector(audio_features, audio_mask),
                                "video": video_projector(video_features, video_mask)})
    fused[fused_mask].pow(2).sum().backward()
    for module in (audio_projector, video_projector, fusion):
        for name, param in module.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    assert fusion.queries.grad.abs().sum() > 0 and audio_projector.mlp[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"modalities": ["audio"]}, "modalities"),
        ({"modalities": ["audio", "audio"]}, "modalities"),
        ({"modalities": ["audio", "speech"]}, "modalities"),
        ({"num_tokens": 0}, "num_tokens"),
        ({"num_heads": 0}, "num_heads"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_prefusion_config_errors_name_the_key(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        PrefusionConfig(**fields)


def test_prefusion_heads_must_divide_the_llm_width():
    with pytest.raises(ConfigError, match="key 'num_heads'"):
        PreFusion(PrefusionConfig(enabled=True, num_heads=3), D_LLM)
