"""Frame sampling at a given index or at each sample's annotated peak frame."""

from __future__ import annotations

import pytest

from emoreason.config import ConfigError
from emoreason.media.errors import MediaError
from emoreason.media.video import FrameSampling, decode_frames, for_sample, sample_frame_indices


def test_given_frame_index():
    sampling = FrameSampling(num_frames=None, frame_index=7)
    assert sample_frame_indices(20, 25.0, sampling).tolist() == [7]
    with pytest.raises(MediaError, match="frame_index 20 is past the clip's last frame 19") as err:
        sample_frame_indices(20, 25.0, FrameSampling(num_frames=None, frame_index=20))
    assert err.value.reason == "bad_field"


def test_peak_frame_comes_from_the_sample():
    sampling = FrameSampling(num_frames=None, peak_frame=True)
    assert for_sample(sampling, 12).frame_index == 12
    assert sample_frame_indices(30, 25.0, for_sample(sampling, 12)).tolist() == [12]
    with pytest.raises(MediaError, match="no action_units.peak_frame"):
        for_sample(sampling, None)
    with pytest.raises(MediaError, match="needs the sample's peak frame"):
        sample_frame_indices(30, 25.0, sampling)  # for_sample was skipped
    uniform = FrameSampling()
    assert for_sample(uniform, 12) is uniform  # peak annotations only matter when asked for


@pytest.mark.parametrize(("fields", "key"), [
    ({"frame_index": 3}, "num_frames"),  # num_frames defaults to 8: set it to null
    ({"num_frames": None, "fps": 2.0, "peak_frame": True}, "num_frames"),
    ({"num_frames": None, "frame_index": -1}, "frame_index"),
    ({"num_frames": None, "peak_frame": "yes"}, "peak_frame"),
])
def test_frame_index_config_errors(fields, key):
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        FrameSampling(**fields)


def test_decode_one_given_frame(media_dir):
    decoded = decode_frames(media_dir / "h264_aac.mp4", FrameSampling(num_frames=None, frame_index=3))
    assert decoded.frames.shape[0] == 1
    assert decoded.times.tolist() == pytest.approx([3 / decoded.source_fps])
