import numpy as np
import pytest

from emoreason.data_prep.synthetic import STYLES, render_face, sample_layout
from emoreason.media.faces import (
    Box,
    FaceDetector,
    HaarFaceDetector,
    build_face_detector,
    crop_face,
    crop_main_faces,
    main_face,
)


class FixedDetector(FaceDetector):
    """A plug-in detector for the "module:Class" loader: always one box of side `size`."""

    def __init__(self, size: int = 10):
        self.size = size

    def detect(self, frame: np.ndarray) -> list[Box]:
        return [Box(0, 0, self.size, self.size, 1.0)]


class NotADetector:
    pass


@pytest.fixture(scope="module")
def haar() -> HaarFaceDetector:
    return HaarFaceDetector()


@pytest.mark.parametrize("label", sorted(STYLES))
def test_haar_finds_the_drawn_face(haar, label):
    rng = np.random.default_rng(3)
    layout = sample_layout(rng, 160, 160)
    frame = render_face(STYLES[label].face, rng, layout=layout)  # [160, 160, 3]
    box = main_face(haar.detect(frame))
    assert box is not None
    # The face centre lies inside the detected box, and the box is face-sized, not frame-sized.
    assert box.x <= layout.cx <= box.x + box.w and box.y <= layout.cy <= box.y + box.h
    assert 0.5 * layout.half_width < box.w < 4 * layout.half_width


def test_haar_finds_nothing_on_blank_or_noise(haar):
    assert haar.detect(np.full((120, 160, 3), 128, dtype=np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert haar.detect(noise) == []


def test_haar_rejects_bad_frames_and_cascades(haar):
    with pytest.raises(ValueError, match="RGB uint8"):
        haar.detect(np.zeros((32, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="RGB uint8"):
        haar.detect(np.zeros((32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="cannot load Haar cascade"):
        HaarFaceDetector(cascade="no_such_cascade.xml")


def test_crop_main_faces_records_frames_without_a_face(haar):
    face = render_face(STYLES["happy"].face, np.random.default_rng(0))
    blank = np.zeros_like(face)
    crops, missing = crop_main_faces(np.stack([face, blank, face]), haar, margin=0.2, size=48)
    assert crops.shape == (2, 48, 48, 3) and crops.dtype == np.uint8
    assert missing == [1]


def test_crop_main_faces_without_any_face_is_empty(haar):
    crops, missing = crop_main_faces(np.zeros((2, 64, 64, 3), dtype=np.uint8), haar, margin=0.2, size=32)
    assert crops.shape == (0, 32, 32, 3)
    assert missing == [0, 1]


def test_crop_face_pads_with_zeros_beyond_the_border():
    frame = np.full((100, 100, 3), 255, dtype=np.uint8)
    # A 20 px box at the corner grown by 0.5 on each side is a 40 px square from -10 to 30.
    crop = crop_face(frame, Box(0, 0, 20, 20, 1.0), margin=0.5, size=40)
    assert crop.shape == (40, 40, 3) and crop.dtype == np.uint8
    assert (crop[:10, :] == 0).all() and (crop[:, :10] == 0).all()
    assert (crop[10:, 10:] == 255).all()


def test_crop_face_inside_the_frame_is_the_box_region():
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    crop = crop_face(frame, Box(10, 5, 32, 32, 1.0), margin=0.0, size=32)
    np.testing.assert_array_equal(crop, frame[5:37, 10:42])


def test_crop_face_squares_a_tall_box_and_resizes():
    frame = np.zeros((200, 200, 3), dtype=np.uint8)
    assert crop_face(frame, Box(50, 50, 20, 60, 1.0), margin=0.1, size=24).shape == (24, 24, 3)
    with pytest.raises(ValueError):
        crop_face(frame, Box(50, 50, 20, 20, 1.0), margin=-0.1, size=24)


def test_main_face_prefers_area_then_score():
    small, big, big_sure = Box(0, 0, 10, 10, 9.0), Box(0, 0, 20, 20, 1.0), Box(5, 5, 20, 20, 2.0)
    assert main_face([small, big]) == big
    assert main_face([big, big_sure, small]) == big_sure
    assert main_face([]) is None


def test_build_face_detector_haar_takes_params():
    detector = build_face_detector("haar", min_neighbors=3, min_size_frac=0.2)
    assert isinstance(detector, HaarFaceDetector) and isinstance(detector, FaceDetector)
    assert detector.min_neighbors == 3


def test_build_face_detector_loads_a_plugin_class():
    detector = build_face_detector(f"{__name__}:FixedDetector", size=7)
    assert isinstance(detector, FixedDetector)
    crops, missing = crop_main_faces(np.zeros((3, 20, 20, 3), dtype=np.uint8), detector, margin=0.0, size=8)
    assert crops.shape == (3, 8, 8, 3) and missing == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("retinaface", "unknown face detector 'retinaface'"),
        ("no_such_package_xyz.detectors:Face", "cannot import face detector module"),
        ("emoreason.media.faces:NoSuchClass", "has no attribute 'NoSuchClass'"),
        (f"{__name__}:NotADetector", "is not a subclass of emoreason.media.faces.FaceDetector"),
        ("os:system", "is not a subclass"),
    ],
)
def test_build_face_detector_rejects_bad_names(name, message):
    with pytest.raises(ValueError, match=message):
        build_face_detector(name)


class CountingDetector(FaceDetector):
    """One box per frame, shifted by the frame's brightness, so carried boxes are told apart from detected ones."""

    def __init__(self):
        self.calls = 0

    def detect(self, frame: np.ndarray) -> list[Box]:
        self.calls += 1
        return [Box(float(frame[0, 0, 0]), 0, 20, 20, 1.0)]


def test_detect_every_k_carries_the_last_detection():
    from emoreason.media.faces import main_face_boxes

    frames = np.stack([np.full((40, 40, 3), i, dtype=np.uint8) for i in range(7)])  # [7, 40, 40, 3]
    detector = CountingDetector()
    boxes = main_face_boxes(frames, detector, every=3)
    assert detector.calls == 3  # frames 0, 3, 6
    assert [b.x for b in boxes] == [0, 0, 0, 3, 3, 3, 6]
    with pytest.raises(ValueError, match="every >= 1"):
        main_face_boxes(frames, detector, every=0)


def test_detection_on_a_downscaled_copy_finds_the_face_in_frame_pixels(haar):
    from emoreason.media.faces import detect_main_face

    rng = np.random.default_rng(3)
    layout = sample_layout(rng, 160, 160)
    frame = render_face(STYLES["happy"].face, rng, layout=layout)  # [160, 160, 3]
    full, small = detect_main_face(frame, haar), detect_main_face(frame, haar, short_side=96)
    assert full is not None and small is not None
    # Boxes come back in the full frame's pixels; scripts/bench_faces.py measures how far they move (<= 11 px).
    assert small.x <= layout.cx <= small.x + small.w and small.y <= layout.cy <= small.y + small.h
    assert abs(small.w - full.w) < 0.25 * full.w
    assert detect_main_face(frame, haar, short_side=400) == full  # never upscaled


def test_cheaper_detection_settings_key_the_cache_only_when_set():
    from emoreason.config import ConfigError
    from emoreason.features.media_config import FaceCropConfig

    default = FaceCropConfig()
    assert set(default.key_settings()) == {"detector", "detector_args", "margin", "size"}  # the keys of older caches
    assert FaceCropConfig(detect_every=2).key_settings()["detect_every"] == 2
    assert FaceCropConfig(detect_short_side=80).key_settings()["detect_short_side"] == 80
    for fields, key in (({"detect_every": 0}, "detect_every"), ({"detect_short_side": 8}, "detect_short_side")):
        with pytest.raises(ConfigError, match=f"key '{key}'"):
            FaceCropConfig(**fields)
