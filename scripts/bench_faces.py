"""Benchmark cheaper face detection: clips/s of decode + faces, and how far boxes and face features move.

    .venv/bin/python scripts/bench_faces.py [--clips 32]

Prints one JSON object (also the `faces` section of scripts/bench_serve.py). For each setting of
`media.faces.detect_short_side` / `detect_every` against the default (Haar at full size on every sampled
frame), on the same synthetic clips in the same run:
- clips/s of `Featurizer.decode` for the face modality (frames decoded, faces detected, crops cut);
- the largest difference of a face box (pixels of the 160 px frame, any corner coordinate, over frames
  where both found a face) and frames whose face was found by one setting only;
- the largest difference of the fp16 face features (tiny random-weight face encoder, all patch tokens),
  absolute and relative to the largest baseline value.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

SETTINGS = {
    "short_side_80": {"detect_short_side": 80},
    "every_2": {"detect_every": 2},
    "short_side_80_every_2": {"detect_short_side": 80, "detect_every": 2},
}


def face_boxes(featurizer, clips: list[Path]) -> list[list]:
    """Per clip, the main face box of each sampled frame (None where none), as the face crop step finds them."""
    from emoreason.media.faces import main_face_boxes
    from emoreason.media.video import decode_frames

    faces = featurizer.media.faces
    return [main_face_boxes(decode_frames(c, featurizer.media.video).frames, featurizer.detector, faces.detect_every,
                            faces.detect_short_side) for c in clips]


def decode_rate(featurizer, clips: list[Path], repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for c in clips:
            featurizer.decode({"video": c}, ["face"])
        best = min(best, time.perf_counter() - start)
    return len(clips) / best


def faces_section(num_clips: int = 32, work: Path | None = None) -> dict:
    from emoreason.data_prep.synthetic import SyntheticConfig, generate_dataset
    from emoreason.encoders.config import EncoderConfig
    from emoreason.encoders.tiny import build_tiny_encoders
    from emoreason.features.featurizer import Featurizer
    from emoreason.features.media_config import FaceCropConfig, MediaConfig

    with tempfile.TemporaryDirectory(prefix="bench_faces_") as tmp:
        work = Path(work or tmp)
        samples = generate_dataset(work / "data", SyntheticConfig(num_per_class=max(1, num_clips // 4), seed=2))
        clips = [work / "data" / s.media.video for s in samples]
        face_model = build_tiny_encoders(work / "encoders")["face"]
        encoders = {"face": EncoderConfig(model=str(face_model), pooling="none")}  # configs/prep/demo.yaml's face
        base_media = MediaConfig(faces=FaceCropConfig(size=64))

        def featurizer(**faces) -> Featurizer:
            return Featurizer(encoders, dataclasses.replace(base_media, faces=dataclasses.replace(base_media.faces, **faces)))

        base = featurizer()
        base_rate = decode_rate(base, clips)
        base_boxes = face_boxes(base, clips)
        base_features = [base.featurize({"video": c}, ["face"]).features.get("face") for c in clips]
        scale = max(float(f.float().abs().max()) for f in base_features if f is not None)
        out: dict = {"clips": len(clips), "frame_size": "160x160", "baseline_clips_per_s": round(base_rate, 2), "settings": {}}
        for name, faces in SETTINGS.items():
            cheap = featurizer(**faces)
            rate = decode_rate(cheap, clips)
            box_diff, presence_diff = 0.0, 0
            for ours, theirs in zip(face_boxes(cheap, clips), base_boxes):
                for a, b in zip(ours, theirs):
                    if (a is None) != (b is None):
                        presence_diff += 1
                    elif a is not None:
                        box_diff = max(box_diff, abs(a.x - b.x), abs(a.y - b.y), abs(a.x + a.w - b.x - b.w),
                                       abs(a.y + a.h - b.y - b.h))
            feature_diff, shape_changes = 0.0, 0
            for c, expected in zip(clips, base_features):
                got = cheap.featurize({"video": c}, ["face"]).features.get("face")
                if got is None or expected is None or got.shape != expected.shape:
                    shape_changes += (got is None) != (expected is None) or (got is not None and got.shape != expected.shape)
                    continue
                feature_diff = max(feature_diff, float((got.float() - expected.float()).abs().max()))
            out["settings"][name] = {
                "faces": faces,
                "clips_per_s": round(rate, 2),
                "speedup": round(rate / base_rate, 2),
                "max_box_diff_px": round(box_diff, 2),
                "frames_face_found_by_one_only": presence_diff,
                "max_face_feature_diff": round(feature_diff, 4),
                "max_face_feature_diff_relative": round(feature_diff / scale, 4),
                "clips_with_other_face_token_count": int(shape_changes),
            }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32, help="synthetic clips (split over 4 classes)")
    args = parser.parse_args(argv)
    print(json.dumps(faces_section(args.clips), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
