"""The `emoreason prep` config: where samples come from, how media is decoded, which encoders run."""

from __future__ import annotations

import dataclasses

from emoreason.config import check
from emoreason.constants import MODALITIES
from emoreason.encoders.config import EncoderConfig
from emoreason.features.media_config import MediaConfig
from emoreason.ray_cluster import RayConfig


@dataclasses.dataclass
class PrepConfig:
    input: str
    """Schema JSONL, or a manifest: CSV with an `id` column and media columns, or a text file of paths."""
    output_dir: str
    """Receives samples.jsonl (samples with feature references), status.jsonl and report.json."""
    encoders: dict[str, EncoderConfig]
    """Frozen encoder per modality (audio, face, video, frame); only these modalities are computed."""
    data_root: str | None = None
    """Media paths are relative to this; defaults to the input file's folder."""
    feature_cache: str | None = None
    """Feature cache folder, shareable between runs; defaults to <output_dir>/features."""
    engine: str = "local"
    """"local": worker processes on this machine; "ray": Ray Data on a Ray cluster (the ray extra, docs/scale_out.md)."""
    workers: int = 1
    """Worker processes (local engine); 1 runs in this process. The ray engine's decoding tasks fill the cluster's CPUs."""
    threads_per_worker: int | None = None
    """Torch/OpenCV threads per worker; None shares the machine's cores evenly among the workers."""
    media: MediaConfig = dataclasses.field(default_factory=MediaConfig)
    """Frame sampling, face crops and audio limits: the same block a train config has under model.media."""
    required_modalities: list[str] = dataclasses.field(default_factory=list)
    """A sample missing one of these fails; otherwise a sample missing some modality is written as partial."""
    ray: RayConfig = dataclasses.field(default_factory=RayConfig)
    """The ray engine's cluster address and encoder actor pools."""
    progress: bool = True
    """Show a progress bar."""

    @property
    def cached_encoders(self) -> dict[str, EncoderConfig]:
        """The encoders prep runs. A `train.mode: lora` encoder is skipped: its features change every training
        step, so training computes them from the media itself and reads no cache for it (emoreason.encoders.tuned);
        prep still records its settings in featurizer.json, from which training takes them."""
        return {m: e for m, e in self.encoders.items() if not e.train.trainable}

    def __post_init__(self) -> None:
        check(bool(self.encoders), "encoders", f"at least one encoder, keyed by modality among {list(MODALITIES)}")
        for modality in self.encoders:
            check(modality in MODALITIES, f"encoders.{modality}", f"a modality among {list(MODALITIES)}", modality)
        for modality in self.required_modalities:
            check(modality in self.encoders, "required_modalities", f"modalities that have an encoder ({sorted(self.encoders)})", modality)
            check(modality in self.cached_encoders, "required_modalities",
                  f"modalities prep computes; {modality}'s encoder is tuned with LoRA (train.mode lora), which prep skips", modality)
        check(self.engine in ("local", "ray"), "engine", "'local' or 'ray'", self.engine)
        check(self.workers >= 1, "workers", "an integer >= 1", self.workers)
        check(self.threads_per_worker is None or self.threads_per_worker >= 1, "threads_per_worker", "null or an integer >= 1", self.threads_per_worker)

