"""Drawing the synthetic faces and voices: one visual and one vocal style per emotion class.

The face is a shaded frontal head drawn with OpenCV whose mouth, brows, eye opening and skin tint
follow the class; it keeps the contrasts a Haar cascade keys on (dark eye sockets and brows over
lighter cheeks, a light nose bridge), so the stock detector finds it. The voice is a harmonic tone
whose pitch contour and timbre follow the class. Per-sample jitter keeps samples apart; the class
differences are far larger than the jitter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

# Drawing at 2x and downsampling anti-aliases every edge at once.
SUPERSAMPLE = 2


@dataclass(frozen=True)
class FaceStyle:
    """Facial expression of a class; lengths are in units of the face half-width."""

    mouth_curve: float = 0.0
    """> 0 lifts the mouth corners (smile), < 0 drops them (frown)."""
    mouth_open: float = 0.0
    mouth_width: float = 0.28
    teeth: bool = False
    brow_tilt: float = 0.0
    """> 0 lifts the inner brow ends (sad, fearful), < 0 lowers them (angry)."""
    brow_raise: float = 0.0
    eye_open: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """RGB gain on the skin colour."""


@dataclass(frozen=True)
class VoiceStyle:
    """Tone of a class: a pitch contour plus timbre."""

    f0: float
    glide: float = 0.0
    """Semitones gained (or lost) linearly over the clip."""
    jump: float = 0.0
    """Semitones added abruptly at `jump_at` (fraction of the clip)."""
    jump_at: float = 0.35
    harmonics: int = 4
    rolloff: float = 1.5
    """Harmonic k has amplitude k ** -rolloff: small values sound harsh, large ones dull."""
    tremolo_hz: float = 0.0
    tremolo_depth: float = 0.0
    vibrato_hz: float = 0.0
    vibrato_semitones: float = 0.0
    gain: float = 0.5


@dataclass(frozen=True)
class ClassStyle:
    face: FaceStyle
    voice: VoiceStyle


STYLES: dict[str, ClassStyle] = {
    "happy": ClassStyle(
        FaceStyle(mouth_curve=1.0, mouth_open=0.6, mouth_width=0.34, teeth=True, brow_raise=0.03, eye_open=0.85,
                  tint=(1.1, 1.0, 0.86)),
        VoiceStyle(f0=240, glide=7, harmonics=6, rolloff=1.2, vibrato_hz=5, vibrato_semitones=0.3, gain=0.5),
    ),
    "sad": ClassStyle(
        FaceStyle(mouth_curve=-0.9, mouth_width=0.26, brow_tilt=0.12, eye_open=0.8, tint=(0.88, 0.96, 1.14)),
        VoiceStyle(f0=150, glide=-5, harmonics=2, rolloff=2.5, gain=0.25),
    ),
    "angry": ClassStyle(
        FaceStyle(mouth_width=0.22, brow_tilt=-0.14, brow_raise=-0.05, eye_open=0.75, tint=(1.18, 0.84, 0.82)),
        VoiceStyle(f0=210, harmonics=14, rolloff=0.7, tremolo_hz=9, tremolo_depth=0.5, gain=0.8),
    ),
    "surprised": ClassStyle(
        FaceStyle(mouth_open=0.8, mouth_width=0.16, brow_raise=0.08, eye_open=1.2, tint=(1.04, 0.97, 1.08)),
        VoiceStyle(f0=220, jump=12, harmonics=5, gain=0.55),
    ),
    "neutral": ClassStyle(
        FaceStyle(mouth_width=0.26, tint=(1.0, 0.97, 0.95)),
        VoiceStyle(f0=165, harmonics=4, gain=0.4),
    ),
    "fearful": ClassStyle(
        FaceStyle(mouth_curve=-0.3, mouth_open=0.3, mouth_width=0.32, brow_tilt=0.08, brow_raise=0.08, eye_open=1.3,
                  tint=(0.92, 1.03, 0.94)),
        VoiceStyle(f0=330, glide=2, harmonics=3, vibrato_hz=7, vibrato_semitones=1.0, gain=0.3),
    ),
}

# ---------------------------------------------------------------- video


@dataclass(frozen=True)
class FaceLayout:
    """Where and what colour one face is: positions in output pixels, colours RGB 0-255."""

    cx: float
    cy: float
    half_width: float
    roll: float
    """Head roll in degrees."""
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    shirt: tuple[float, float, float]
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    """Top and bottom colours of a vertical gradient."""
    gaze: tuple[float, float] = (0.0, 0.0)
    """Iris offset in face half-widths."""


def sample_layout(rng: np.random.Generator, width: int, height: int) -> FaceLayout:
    half_width = rng.uniform(0.18, 0.23) * min(width, height)
    # Skin varies in brightness far more than in hue, so the class tint stays readable.
    skin = np.array([226.0, 184.0, 152.0]) * rng.uniform(0.78, 1.04) * rng.uniform(0.97, 1.03, 3)
    return FaceLayout(
        cx=width / 2 + rng.uniform(-0.08, 0.08) * width,
        cy=height / 2 + rng.uniform(-0.06, 0.06) * height,
        half_width=half_width,
        roll=rng.uniform(-5, 5),
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(rng.uniform(15, 70) * rng.uniform(0.7, 1.0, 3)),
        shirt=tuple(rng.uniform(30, 220, 3)),
        background=(tuple(rng.uniform(40, 230, 3)), tuple(rng.uniform(40, 230, 3))),
        gaze=tuple(rng.uniform(-0.03, 0.03, 2)),
    )


class _Canvas:
    """Drawing in face coordinates: (u, v) in face half-widths from the face centre, v pointing down."""

    def __init__(self, image: np.ndarray, layout: FaceLayout):
        self.image = image  # [H, W, 3] float32, supersampled
        self.scale = layout.half_width * SUPERSAMPLE
        self.centre = np.array([layout.cx, layout.cy]) * SUPERSAMPLE
        self.roll = layout.roll
        theta = np.deg2rad(layout.roll)
        self.rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])

    def px(self, uv: np.ndarray) -> np.ndarray:
        """Face coordinates [..., 2] -> integer pixels [..., 2]."""
        return np.round(np.asarray(uv) @ self.rotation.T * self.scale + self.centre).astype(np.int32)

    def ellipse(self, uv, axes, colour, angle=0.0, start=0, end=360, thickness=-1.0) -> None:
        size = tuple(int(round(a * self.scale)) for a in axes)
        width = -1 if thickness < 0 else max(1, int(round(thickness * self.scale)))
        cv2.ellipse(self.image, tuple(self.px(uv)), size, self.roll + angle, start, end, colour, width, cv2.LINE_AA)

    def polyline(self, uv: np.ndarray, colour, thickness: float) -> None:
        width = max(1, int(round(thickness * self.scale)))
        cv2.polylines(self.image, [self.px(uv)], False, colour, width, cv2.LINE_AA)

    def polygon(self, uv: np.ndarray, colour) -> None:
        cv2.fillPoly(self.image, [self.px(uv)], colour, cv2.LINE_AA)


def _shade(colour, factor: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * factor)) for c in colour)


def _background(layout: FaceLayout, width: int, height: int) -> np.ndarray:
    """The vertical gradient [height, width, 3] float32."""
    top, bottom = (np.array(c, dtype=np.float32) for c in layout.background)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]  # [h, 1, 1]
    return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3))


def _draw_head(canvas: _Canvas, layout: FaceLayout, skin) -> None:
    """Shoulders, neck, hair, ears and the shaded face oval (1 wide, 1.3 tall)."""
    canvas.ellipse((0, 2.45), (1.9, 1.0), layout.shirt)
    canvas.polygon(np.array([[-0.42, 0.8], [0.42, 0.8], [0.46, 1.7], [-0.46, 1.7]]), _shade(skin, 0.8))
    canvas.ellipse((0, -0.2), (1.1, 1.25), layout.hair)
    for side in (-1, 1):
        canvas.ellipse((side * 0.98, -0.02), (0.16, 0.26), _shade(skin, 0.85))
    _draw_shaded_oval(canvas, skin)
    # Fringe: hair over the top of the forehead gives the head a hairline.
    canvas.ellipse((0, -0.78), (1.02, 0.55), layout.hair, start=180, end=360)


def _draw_shaded_oval(canvas: _Canvas, skin) -> None:
    """The face oval, darker towards its rim and lit from the upper left, like a real head."""
    # Shade only the oval's bounding square (radius 1.3 at any roll), not the whole image.
    h, w = canvas.image.shape[:2]
    x0, y0 = np.maximum(np.floor(canvas.centre - 1.3 * canvas.scale), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(canvas.centre + 1.3 * canvas.scale) + 1, (w, h)).astype(int)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    offset = np.stack([xs - canvas.centre[0], ys - canvas.centre[1]], axis=-1) / canvas.scale  # [y, x, 2]
    u, v = np.moveaxis(offset @ canvas.rotation.astype(np.float32), -1, 0)  # undo the roll
    r2 = u**2 + (v / 1.3) ** 2
    inside = r2 <= 1.0
    shade = 1.06 - 0.28 * r2 - 0.06 * u - 0.04 * v  # [y, x]
    region = canvas.image[y0:y1, x0:x1]
    region[inside] = np.asarray(skin, dtype=np.float32) * np.clip(shade[inside], 0, 1.2)[:, None]


def _draw_eyes(canvas: _Canvas, style: FaceStyle, skin, gaze: np.ndarray) -> None:
    # Dark sockets over lighter cheeks and a light nose bridge: the contrasts a Haar cascade keys on.
    for side in (-1, 1):
        centre = np.array([side * 0.38, -0.12])
        canvas.ellipse(centre + (0, -0.02), (0.3, 0.17), _shade(skin, 0.72))
        open_h = 0.085 * style.eye_open
        canvas.ellipse(centre, (0.18, open_h), (236, 234, 228))
        iris = min(0.085, open_h * 1.05)
        canvas.ellipse(centre + gaze, (iris, iris), (70, 45, 30))
        canvas.ellipse(centre + gaze, (iris * 0.5, iris * 0.5), (10, 8, 8))
        canvas.ellipse(centre + gaze + (-0.03, -0.03), (0.018, 0.018), (250, 250, 250))
        canvas.ellipse(centre, (0.19, open_h + 0.01), (40, 28, 25), start=180, end=360, thickness=0.035)


def _draw_brows(canvas: _Canvas, style: FaceStyle, hair) -> None:
    colour = _shade(hair, 0.8)
    for side in (-1, 1):
        inner_v = -0.38 - style.brow_raise - style.brow_tilt
        outer_v = -0.38 - style.brow_raise + style.brow_tilt * 0.3
        arch = 0.04 + 0.4 * max(style.brow_raise, 0.0)
        middle_v = (inner_v + outer_v) / 2 - arch
        points = np.array([[side * 0.14, inner_v], [side * 0.38, middle_v], [side * 0.6, outer_v]])
        canvas.polyline(points, colour, thickness=0.08)


def _draw_nose(canvas: _Canvas, skin) -> None:
    canvas.ellipse((0.0, 0.05), (0.08, 0.3), _shade(skin, 1.12))
    canvas.polyline(np.array([[0.1, -0.05], [0.13, 0.25], [0.09, 0.33]]), _shade(skin, 0.78), thickness=0.03)
    canvas.ellipse((0.0, 0.3), (0.11, 0.07), _shade(skin, 1.08))
    for side in (-1, 1):
        canvas.ellipse((side * 0.09, 0.36), (0.045, 0.025), _shade(skin, 0.45))


def _draw_mouth(canvas: _Canvas, style: FaceStyle) -> None:
    x = np.linspace(-1.0, 1.0, 25)
    half = style.mouth_width
    # Corners move with the curve, the centre stays put: a smile lifts the corners.
    centre_v = 0.66 - style.mouth_curve * 0.14 * x**2
    opening = style.mouth_open * 0.3 * np.sqrt(1 - x**2)
    # An open smile drops the lower lip more than it lifts the upper one.
    lift = 0.35 if style.mouth_curve > 0 else 0.5
    upper = np.stack([x * half, centre_v - lift * opening], axis=1)
    lower = np.stack([x * half, centre_v + (1 - lift) * opening], axis=1)
    lips = (150, 70, 70) if style.mouth_width > 0.24 else (120, 60, 60)
    if style.mouth_open > 0:
        canvas.polygon(np.concatenate([upper, lower[::-1]]), (55, 18, 22))
        if style.teeth:
            teeth = upper.copy()
            teeth[:, 1] += 0.35 * opening
            canvas.polygon(np.concatenate([upper, teeth[::-1]]), (240, 238, 230))
        canvas.polyline(lower, lips, thickness=0.07)
    canvas.polyline(upper, lips, thickness=0.06)
    canvas.polyline(upper, _shade(lips, 0.5), thickness=0.02)


def _landmarks_uv(style: FaceStyle) -> np.ndarray:
    """The 68 iBUG landmarks [68, 2] of the face `_draw_still` draws, in face coordinates (see _Canvas)."""

    def along(points: list[tuple[float, float]], count: int) -> np.ndarray:
        # `count` points evenly spaced along the polyline through `points`.
        points = np.asarray(points, dtype=np.float64)
        lengths = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))]
        at = np.linspace(0.0, lengths[-1], count)
        return np.stack([np.interp(at, lengths, points[:, 0]), np.interp(at, lengths, points[:, 1])], axis=1)

    theta = np.linspace(np.pi, 0.0, 17)  # jaw: along the lower half of the oval, image left to right
    jaw = np.stack([np.cos(theta), 1.3 * np.sin(theta)], axis=1)
    brows = []
    for side in (-1, 1):  # the same three points _draw_brows draws through
        inner_v = -0.38 - style.brow_raise - style.brow_tilt
        outer_v = -0.38 - style.brow_raise + style.brow_tilt * 0.3
        middle_v = (inner_v + outer_v) / 2 - (0.04 + 0.4 * max(style.brow_raise, 0.0))
        brow = [(side * 0.6, outer_v), (side * 0.38, middle_v), (side * 0.14, inner_v)]
        brows.append(along(brow if side < 0 else brow[::-1], 5))  # image left to right
    bridge = along([(0.0, -0.12), (0.0, 0.25)], 4)
    nostrils = np.stack([np.linspace(-0.11, 0.11, 5), 0.36 + 0.02 * (np.abs(np.linspace(-1, 1, 5)) - 1)], axis=1)
    eyes = []
    open_h = 0.085 * style.eye_open
    for side in (-1, 1):
        # iBUG order: outer corner of the image-left eye (inner of the other), over the top, back along the bottom.
        angles = np.deg2rad([180, 240, 300, 0, 60, 120])
        eyes.append(np.stack([side * 0.38 + 0.18 * np.cos(angles), -0.12 + open_h * np.sin(angles)], axis=1))
    half = style.mouth_width
    lift = 0.35 if style.mouth_curve > 0 else 0.5

    def lip(x: np.ndarray, upper: bool, outer: float) -> np.ndarray:
        # The curves _draw_mouth draws; `outer` moves a point off the opening by the lip's thickness.
        centre_v = 0.66 - style.mouth_curve * 0.14 * x**2
        opening = style.mouth_open * 0.3 * np.sqrt(np.clip(1 - x**2, 0, 1))
        v = centre_v - lift * opening - outer if upper else centre_v + (1 - lift) * opening + outer
        return np.stack([x * half, v], axis=1)

    x5 = np.array([-2, -1, 0, 1, 2]) / 3
    outer_lips = np.concatenate([lip(np.array([-1.0]), True, 0), lip(x5, True, 0.03), lip(np.array([1.0]), True, 0),
                                 lip(x5[::-1], False, 0.035)])
    inner_lips = np.concatenate([lip(np.array([-0.85]), True, 0), lip(np.array([-0.5, 0, 0.5]), True, 0),
                                 lip(np.array([0.85]), True, 0), lip(np.array([0.5, 0, -0.5]), False, 0)])
    return np.concatenate([jaw, *brows, bridge, nostrils, *eyes, outer_lips, inner_lips])  # [68, 2]


def face_landmarks(style: FaceStyle, layout: FaceLayout) -> np.ndarray:
    """The drawn face's 68 landmarks [68, 2] in output pixels (x, y) of a still drawn with `layout`."""
    theta = np.deg2rad(layout.roll)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return _landmarks_uv(style) @ rotation.T * layout.half_width + np.array([layout.cx, layout.cy])


def _draw_still(style: FaceStyle, layout: FaceLayout, width: int, height: int, fill: float | None) -> np.ndarray:
    """The face [height, width, 3] float32 without noise, on its gradient or on a flat `fill`."""
    big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    image = np.empty((big_h, big_w, 3), dtype=np.float32)  # [H, W, 3]
    image[:] = _background(layout, big_w, big_h) if fill is None else fill
    skin = tuple(float(min(255.0, s * t)) for s, t in zip(layout.skin, style.tint))
    canvas = _Canvas(image, layout)
    _draw_head(canvas, layout, skin)
    _draw_eyes(canvas, style, skin, np.asarray(layout.gaze))
    _draw_brows(canvas, style, layout.hair)
    _draw_nose(canvas, skin)
    _draw_mouth(canvas, style)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _add_noise(frame: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Gaussian noise on a float frame [h, w, 3] -> uint8; luma only, a third of the draws of RGB noise."""
    frame = frame + rng.standard_normal((*frame.shape[:2], 1), dtype=np.float32) * noise
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def render_face(
    style: FaceStyle,
    rng: np.random.Generator,
    width: int = 160,
    height: int = 160,
    layout: FaceLayout | None = None,
    noise: float = 3.0,
) -> np.ndarray:
    """One RGB uint8 frame [height, width, 3] of a face showing `style`; a random layout if none."""
    layout = layout or sample_layout(rng, width, height)
    return _add_noise(_draw_still(style, layout, width, height, fill=None), rng, noise)


def render_clip(
    style: FaceStyle, rng: np.random.Generator, num_frames: int, width: int, height: int, noise: float = 3.0,
    with_landmarks: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Frames [n, h, w, 3] of one face drifting, bobbing and rolling slightly over a still background;
    with_landmarks: also the drawn face's 68 landmarks in every frame [n, 68, 2] (x, y pixels).

    The head is drawn once as a sprite and moved by an affine warp per frame: drawing it anew for
    every frame cost several times more for the same picture.
    """
    layout = sample_layout(rng, width, height)
    # A padded sprite, so the shoulders below the frame edge stay filled when the head moves up.
    pad = max(width, height) // 8
    sprite_layout = replace(layout, cx=layout.cx + pad, cy=layout.cy + pad)
    sprite_size = (width + 2 * pad, height + 2 * pad)
    on_black = _draw_still(style, sprite_layout, *sprite_size, fill=0.0)  # [H, W, 3], colour x alpha
    on_white = _draw_still(style, sprite_layout, *sprite_size, fill=255.0)
    alpha = np.clip(1 - (on_white - on_black).mean(axis=2) / 255, 0, 1)  # [H, W]
    background = _background(layout, width, height)  # [h, w, 3]
    drift = rng.uniform(-0.04, 0.04, 2) * np.array([width, height])
    bob_hz, bob_px, roll_deg = rng.uniform(0.6, 1.6), rng.uniform(0.5, 2.0), rng.uniform(-3, 3)
    sprite_points = face_landmarks(style, sprite_layout)  # [68, 2] in sprite pixels
    frames, points = [], []
    for t in np.linspace(0.0, 1.0, num_frames):
        warp = cv2.getRotationMatrix2D((sprite_layout.cx, sprite_layout.cy), roll_deg * t, 1.0)
        warp[:, 2] += (drift[0] * t - pad, drift[1] * t + bob_px * np.sin(2 * np.pi * bob_hz * t) - pad)
        head = cv2.warpAffine(on_black, warp, (width, height))  # [h, w, 3]
        cover = cv2.warpAffine(alpha, warp, (width, height))[..., None]  # [h, w, 1]
        frames.append(_add_noise(head + background * (1 - cover), rng, noise))
        points.append(sprite_points @ warp[:, :2].T + warp[:, 2])  # the same warp moves the points
    return (np.stack(frames), np.stack(points)) if with_landmarks else np.stack(frames)


# ---------------------------------------------------------------- audio


def render_voice(style: VoiceStyle, rng: np.random.Generator, seconds: float, sample_rate: int) -> np.ndarray:
    """Mono float32 samples [s] in [-1, 1]: a harmonic tone following the class's pitch contour."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate  # [s]
    frac = t / seconds
    semitones = style.glide * frac + style.jump * (frac >= style.jump_at)
    semitones = semitones + style.vibrato_semitones * np.sin(2 * np.pi * style.vibrato_hz * t)
    f0 = style.f0 * 2 ** (rng.uniform(-1.5, 1.5) / 12) * 2 ** (semitones / 12)  # [s]
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    k = np.arange(1, style.harmonics + 1)[:, None]  # [k, 1]
    # Harmonics above Nyquist would alias back as inharmonic noise.
    amps = k**-style.rolloff * (k * f0.max() < sample_rate / 2)
    tone = (amps * np.sin(k * phase)).sum(axis=0) / amps.sum()
    tone *= 1 - style.tremolo_depth * (0.5 + 0.5 * np.sin(2 * np.pi * style.tremolo_hz * t))
    # 20 ms fades: a hard start or stop clicks.
    ramp = np.clip(np.minimum(t, t[-1] - t) / 0.02, 0, 1)
    gain = style.gain * rng.uniform(0.8, 1.2)
    audio = gain * tone * ramp + rng.normal(0, rng.uniform(0.005, 0.02), t.shape)
    return np.clip(audio, -1, 1).astype(np.float32)
