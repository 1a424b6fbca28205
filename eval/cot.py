"""Scores of a chain-of-thought answer: Observations -> Interpretation -> Conclusion.

Per answer, all computed from the text alone (no judge):

- **structure**: which of the three sections are present, as flags and as a fraction of three. A
  section is a heading at the start of a line, case-insensitive, optionally markdown-decorated
  (`### 1. **Observations:**`), followed by a colon or by nothing else on its line, and then a
  non-empty body. `Reasoning` counts as the interpretation, `Answer` and `Final answer` as the
  conclusion. A section that appears twice has its bodies joined.

- **consistency**: does the concluded emotion follow from the reasoning? The *implied* emotions are
  the emotion words of the observations and interpretation, mapped onto the wheel's primary
  classes and counted (`emotion_primaries`). The *concluded* primaries are the wheel primary of the
  label `extract_label` finds in the conclusion (closed label set), or of every emotion word in the
  conclusion (open vocabulary). The answer is consistent when a concluded primary is a plurality
  primary of the reasoning: one mentioned at least as often as any other (ties all count). It is
  None, with the reason counted, when there is no conclusion, the conclusion names no label (or
  several, which extract_label refuses to choose between), the label is not on the wheel, or the
  reasoning implies no emotion.

- **grounding**: do the clues refer only to modalities the sample has? Every cue word of the whole
  answer counts as one mention of its modality (MODALITY_CUES: `voice` -> audio, `smile` -> face,
  `says` -> subtitle, `posture` -> video); a mention is grounded when the sample has a modality that
  can show it (GROUNDED_BY: face cues need a face or a video). Score = grounded / all mentions; None
  when nothing is mentioned.

Emotion words are matched longest phrase first (`in love`), and skipped when a negator (`not`,
`no`, `never`, `without`, `...n't`) precedes them within three words of the same clause, so `not
angry, but sad` implies only sadness. Modality mentions are not negation-filtered: `her voice does
not tremble` is still a claim about the audio.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Collection, Sequence

from emoreason.constants import MEDIA_KINDS, MODALITIES
from emoreason.eval.taxonomy import EmotionWheel, shipped_wheel
from emoreason.labels import extract_label
from emoreason.schema import Sample

SECTIONS: tuple[str, str, str] = ("observations", "interpretation", "conclusion")
RUBRIC_TEMPLATE = "cot_rubric"

_SECTION_OF_HEADING = {
    "observation": "observations",
    "observations": "observations",
    "interpretation": "interpretation",
    "reasoning": "interpretation",
    "conclusion": "conclusion",
    "answer": "conclusion",
    "final answer": "conclusion",
}

_HEADING = re.compile(
    r"""^[ \t]*
    (?:\#{1,6}[ \t]*)?                                  # markdown heading
    (?:[*_]{1,2}[ \t]*)?                                # emphasis around a number
    (?:(?:step[ \t]*)?\d+[.):][ \t]*)?                  # numbering: 1.  2)  step 3:
    (?:[*_]{1,2}[ \t]*)?                                # emphasis opener
    (?P<word>observations?|interpretation|reasoning|conclusion|final[ \t]+answer|answer)
    [ \t]*(?:[*_]{1,2})?[ \t]*
    (?::[ \t]*(?:[*_]{1,2}[ \t]*)?|(?=[ \t]*$))          # a colon, or the heading alone on its line
    """,
    re.IGNORECASE | re.MULTILINE | re.VERBOSE,
)

# Wheel word forms that are mostly not emotions in running text ("looks like", "the content of").
IGNORED_EMOTION_FORMS = frozenset({"like", "care", "content", "long for"})
NEGATORS = frozenset({"not", "no", "never", "without", "nor", "neither", "hardly", "barely", "cannot", "lacks", "lacking"})
NEGATION_WINDOW = 3
_CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"\n\u2013\u2014]+|\s(?:but|however|although|though|whereas|yet)\s")
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")

MODALITY_CUES: dict[str, frozenset[str]] = {
    "audio": frozenset({"audio", "voice", "voices", "vocal", "tone", "tones", "pitch", "speech", "intonation", "prosody"}),
    "face": frozenset({
        "face", "faces", "facial", "expression", "expressions", "eye", "eyes", "brow", "brows", "eyebrow", "eyebrows",
        "smile", "smiles", "smiled", "smiling", "frown", "frowns", "frowned", "frowning",
    }),
    "subtitle": frozenset({"subtitle", "subtitles", "words", "says", "said", "text", "transcript"}),
    "video": frozenset({"scene", "background", "video", "frame", "frames", "gesture", "gestures", "gesturing", "posture"}),
}
GROUNDED_BY: dict[str, frozenset[str]] = {
    "audio": frozenset({"audio"}),
    "face": frozenset({"face", "video"}),  # face crops come from the video (or image) frames
    "subtitle": frozenset({"subtitle"}),
    "video": frozenset({"video"}),
}
# Names a caller may use for what a sample has -> the grounding modality they stand for.
# Every model modality (emoreason.constants.MODALITY_TABLE) is named by itself, except "frame": whole
# frames show the scene, which the "video" cues describe.
MODALITY_NAMES: dict[str, str] = {m: "video" if m == "frame" else m for m in MODALITIES} | {"subtitle": "subtitle", "text": "subtitle"}


# ---------------------------------------------------------------- sections and structure


@dataclasses.dataclass
class Sections:
    bodies: dict[str, str]
    """Section -> its text (bodies of repeated headings joined); absent or empty sections are missing."""
    order: list[str]
    """Sections in the order their first heading appears."""

    def get(self, section: str) -> str | None:
        return self.bodies.get(section) or None


def split_sections(text: str) -> Sections:
    """The answer's sections; text before the first heading belongs to none."""
    text = text.replace("\r\n", "\n")
    matches = list(_HEADING.finditer(text))
    parts: dict[str, list[str]] = {}
    order: list[str] = []
    for match, following in zip(matches, [*matches[1:], None]):
        section = _SECTION_OF_HEADING[re.sub(r"\s+", " ", match["word"].lower())]
        body = text[match.end() : following.start() if following else len(text)].strip()
        parts.setdefault(section, [])
        if body:
            parts[section].append(body)
        if section not in order:
            order.append(section)
    return Sections({s: "\n".join(b) for s, b in parts.items() if b}, order)


@dataclasses.dataclass
class Structure:
    present: dict[str, bool]
    score: float
    """Present sections / 3."""
    ordered: bool
    """The present sections' first headings come in the order observations, interpretation, conclusion."""


def structure(sections: Sections) -> Structure:
    present = {s: sections.get(s) is not None for s in SECTIONS}
    seen = [s for s in sections.order if present[s]]
    return Structure(present, sum(present.values()) / len(SECTIONS), seen == [s for s in SECTIONS if s in seen])


# The R1-style answer format (Facial-R1's format reward): reasoning in <think>, the answer in <answer>, nothing else.
THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def think_answer_match(text: str) -> bool:
    """True when the whole text (outer whitespace aside) is `<think>...</think> <answer>...</answer>`."""
    return THINK_ANSWER.fullmatch(text.strip()) is not None


# ---------------------------------------------------------------- consistency


def _longest_form(wheel: EmotionWheel) -> int:
    return max(len(form.split()) for form in wheel.index)


def _is_negator(token: str) -> bool:
    return token in NEGATORS or token.endswith("n't")


def emotion_primaries(text: str, wheel: EmotionWheel | None = None) -> Counter[str]:
    """Wheel primary -> how many un-negated emotion words of `text` map onto it."""
    wheel = wheel or shipped_wheel()
    longest = _longest_form(wheel)
    counts: Counter[str] = Counter()
    for clause in _CLAUSE_BREAK.split(text.lower().replace("\u2019", "'")):
        tokens = _WORD.findall(clause)
        i = 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                phrase = " ".join(tokens[i : i + n])
                node = None if phrase in IGNORED_EMOTION_FORMS else wheel.lookup(phrase)
                if node is not None:
                    break
            else:
                i += 1
                continue
            if not any(_is_negator(t) for t in tokens[max(0, i - NEGATION_WINDOW) : i]):
                counts[node.primary] += 1
            i += n
    return counts


NO_CONCLUSION = "no_conclusion"
NO_CONCLUDED_LABEL = "conclusion_names_no_label"
LABEL_NOT_ON_WHEEL = "label_not_on_wheel"
NO_IMPLIED_EMOTION = "reasoning_implies_no_emotion"


@dataclasses.dataclass
class Consistency:
    consistent: bool | None
    undecided_because: str | None
    """Why `consistent` is None: one of NO_CONCLUSION, NO_CONCLUDED_LABEL, LABEL_NOT_ON_WHEEL, NO_IMPLIED_EMOTION."""
    concluded_label: str | None
    """The label of the set the conclusion names (closed label set only)."""
    concluded_primaries: list[str]
    implied_primaries: dict[str, int]


def consistency(sections: Sections, labels: Sequence[str] | None = None, wheel: EmotionWheel | None = None) -> Consistency:
    """Whether the conclusion agrees with the reasoning; `labels=None` reads it as open vocabulary."""
    wheel = wheel or shipped_wheel()
    reasoning = "\n".join(filter(None, (sections.get("observations"), sections.get("interpretation"))))
    implied = dict(emotion_primaries(reasoning, wheel)) if reasoning else {}
    conclusion = sections.get("conclusion")

    def undecided(because: str, label: str | None = None, concluded: list[str] | None = None) -> Consistency:
        return Consistency(None, because, label, concluded or [], implied)

    if conclusion is None:
        return undecided(NO_CONCLUSION)
    label = None
    if labels is not None:
        label = extract_label(conclusion, labels)
        if label is None:
            return undecided(NO_CONCLUDED_LABEL)
        node = wheel.lookup(label)
        if node is None:
            return undecided(LABEL_NOT_ON_WHEEL, label)
        concluded = [node.primary]
    else:
        concluded = sorted(emotion_primaries(conclusion, wheel))
        if not concluded:
            return undecided(NO_CONCLUDED_LABEL)
    if not implied:
        return undecided(NO_IMPLIED_EMOTION, label, concluded)
    top = max(implied.values())
    plurality = {primary for primary, count in implied.items() if count == top}
    return Consistency(bool(plurality & set(concluded)), None, label, concluded, implied)


# ---------------------------------------------------------------- grounding


def normalise_modalities(modalities: Collection[str]) -> set[str]:
    if isinstance(modalities, str):
        raise TypeError(f"modalities: expected a collection of names, got the string {modalities!r}")
    unknown = sorted(set(modalities) - set(MODALITY_NAMES))
    if unknown:
        raise ValueError(f"modalities: expected names from {sorted(MODALITY_NAMES)}, got {unknown}")
    return {MODALITY_NAMES[m] for m in modalities}


def available_modalities(media_kinds: Collection[str], has_subtitle: bool = False) -> set[str]:
    """What a sample with these media kinds (video, audio, image) lets a model perceive.

    A video is taken to carry its audio track and faces; pass modalities explicitly when the
    prompt withheld one, or the clip has no audio.
    """
    if isinstance(media_kinds, str):
        raise TypeError(f"media_kinds: expected a collection of names, got the string {media_kinds!r}")
    unknown = sorted(set(media_kinds) - set(MEDIA_KINDS))
    if unknown:
        raise ValueError(f"media_kinds: expected names from {list(MEDIA_KINDS)}, got {unknown}")
    found: set[str] = set()
    if "video" in media_kinds:
        found |= {"video", "face", "audio"}
    if "image" in media_kinds:
        found |= {"video", "face"}
    if "audio" in media_kinds:
        found.add("audio")
    if has_subtitle:
        found.add("subtitle")
    return found


def sample_modalities(sample: Sample) -> set[str]:
    """available_modalities of a sample's media and subtitle, plus the modalities of its extracted features."""
    kinds = [kind for kind in MEDIA_KINDS if getattr(sample.media, kind)]
    has_subtitle = bool(sample.subtitle and sample.subtitle.strip())
    return available_modalities(kinds, has_subtitle) | normalise_modalities(sample.features)


def modality_mentions(text: str) -> Counter[str]:
    """Modality -> how many of its cue words `text` contains."""
    counts: Counter[str] = Counter()
    for token in _WORD.findall(text.lower().replace("\u2019", "'")):
        for modality, cues in MODALITY_CUES.items():
            if token in cues:
                counts[modality] += 1
    return counts


@dataclasses.dataclass
class Grounding:
    score: float | None
    """Grounded mentions / all mentions; None when the answer mentions no modality."""
    mentions: dict[str, int]
    ungrounded: dict[str, int]
    """Mentions, by modality, of modalities the sample lacks."""


def grounding(text: str, modalities: Collection[str]) -> Grounding:
    available = normalise_modalities(modalities)
    mentions = modality_mentions(text)
    ungrounded = {m: n for m, n in mentions.items() if not GROUNDED_BY[m] & available}
    total = sum(mentions.values())
    score = (total - sum(ungrounded.values())) / total if total else None
    return Grounding(score, dict(mentions), ungrounded)


# ---------------------------------------------------------------- per answer and per data set


@dataclasses.dataclass
class CotScore:
    structure: Structure
    consistency: Consistency
    grounding: Grounding

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def score_cot(
    text: str, modalities: Collection[str], labels: Sequence[str] | None = None, wheel: EmotionWheel | None = None
) -> CotScore:
    """All three scores of one answer; `modalities` is what the sample has (see sample_modalities)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected the answer as a string, got {type(text).__name__}")
    sections = split_sections(text)
    return CotScore(structure(sections), consistency(sections, labels, wheel), grounding(text, modalities))


@dataclasses.dataclass
class CotResult:
    samples: int
    structure_mean: float
    section_rates: dict[str, float]
    ordered_rate: float
    consistency_rate: float | None
    """Consistent / answers with a verdict; None when no answer has one."""
    consistency_scored: int
    consistency_none: int
    consistency_none_because: dict[str, int]
    grounding_mean: float | None
    """Mean over answers that mention a modality; None when none does."""
    grounding_scored: int
    grounding_none: int
    ungrounded_mentions: dict[str, int]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def aggregate(scores: Sequence[CotScore]) -> CotResult:
    if not scores:
        raise ValueError("no answers to score")
    n = len(scores)
    verdicts = [s.consistency.consistent for s in scores if s.consistency.consistent is not None]
    grounded = [s.grounding.score for s in scores if s.grounding.score is not None]
    ungrounded: Counter[str] = Counter()
    for s in scores:
        ungrounded.update(s.grounding.ungrounded)
    return CotResult(
        samples=n,
        structure_mean=sum(s.structure.score for s in scores) / n,
        section_rates={sec: sum(s.structure.present[sec] for s in scores) / n for sec in SECTIONS},
        ordered_rate=sum(s.structure.ordered for s in scores) / n,
        consistency_rate=sum(verdicts) / len(verdicts) if verdicts else None,
        consistency_scored=len(verdicts),
        consistency_none=n - len(verdicts),
        consistency_none_because=dict(Counter(s.consistency.undecided_because for s in scores if s.consistency.consistent is None)),
        grounding_mean=sum(grounded) / len(grounded) if grounded else None,
        grounding_scored=len(grounded),
        grounding_none=n - len(grounded),
        ungrounded_mentions=dict(ungrounded),
    )


def summarise(scores: Sequence[CotScore]) -> dict:
    """aggregate(scores) as JSON; for no answers only {"samples": 0}, as there is nothing to average."""
    return aggregate(scores).to_json() if scores else {"samples": 0}


def cot_metrics(
    texts: Sequence[str],
    modalities: Sequence[Collection[str]],
    labels: Sequence[str] | None = None,
    wheel: EmotionWheel | None = None,
) -> CotResult:
    """Aggregate CoT scores; `modalities[i]` is what sample i has."""
    if len(texts) != len(modalities):
        raise ValueError(f"{len(texts)} answers but {len(modalities)} modality sets")
    wheel = wheel or shipped_wheel()
    return aggregate([score_cot(t, m, labels, wheel) for t, m in zip(texts, modalities)])


# ---------------------------------------------------------------- LLM-judge rubric


def reference_text(sample: Sample) -> str:
    """A sample's clues, reasoning and label, as the judge's reference."""
    targets = sample.targets
    if targets is None:
        raise ValueError(f"sample {sample.id!r}: field 'targets': expected clues, reasoning or a label to judge against")
    lines = [f"- {source}: {clue.strip()}" for source, clue in (targets.clues or {}).items()]
    if lines:
        lines.insert(0, "Clues:")
    if targets.reasoning:
        lines.append(f"Reasoning: {targets.reasoning.strip()}")
    label = targets.emotion or ", ".join(targets.open_vocab or [])
    if label:
        lines.append(f"Emotion: {label}")
    if not lines:
        raise ValueError(f"sample {sample.id!r}: field 'targets': expected clues, reasoning or a label to judge against")
    return "\n".join(lines)


def rubric_inputs(sample_text: str, reference: str | Sample) -> dict[str, str]:
    """The inputs of the judge template RUBRIC_TEMPLATE ('cot_rubric'): `prediction` and `reference`."""
    if not isinstance(sample_text, str):
        raise TypeError(f"sample_text: expected the answer as a string, got {type(sample_text).__name__}")
    reference = reference_text(reference) if isinstance(reference, Sample) else reference
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError("reference: expected a non-empty string or a Sample with targets")
    return {"prediction": sample_text.strip(), "reference": reference.strip()}
