"""Chain-of-thought scores on hand-written answers: structure, consistency, grounding, aggregate."""

from __future__ import annotations

import pytest

from emoreason.eval.cot import (
    LABEL_NOT_ON_WHEEL,
    NO_CONCLUDED_LABEL,
    NO_CONCLUSION,
    NO_IMPLIED_EMOTION,
    RUBRIC_TEMPLATE,
    available_modalities,
    cot_metrics,
    emotion_primaries,
    grounding,
    rubric_inputs,
    sample_modalities,
    score_cot,
    split_sections,
    summarise,
)
from emoreason.schema import Media, Sample, Targets

MER_LABELS = ["neutral", "angry", "happy", "sad", "worried", "surprise"]

# As the instruction builder writes it (data_prep/instructions/answers.py: cot_answer).
BUILDER_STYLE = """Observations:
- Audio: a trembling voice, rising pitch
- Face: furrowed brow

Interpretation: The trembling voice suggests she is scared and anxious, not angry.

Conclusion: worried"""

# Reasoning builds to joy, the conclusion says sadness.
CONTRADICTED = """### 1. **Observations:**
She smiles broadly.
**Reasoning**: Her smile shows she is happy and delighted.
Final answer: sad"""


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize(
    "text",
    [
        BUILDER_STYLE,
        "**Observations:** a frown\n**Interpretation:** she is annoyed\n**Conclusion:** angry",
        "## Observations\na frown\n## Reasoning\nshe is annoyed\n## Final Answer\nangry",
        "1. observations: a frown\n2) INTERPRETATION: she is annoyed\n3. Answer: angry",
        "Step 1: Observations: a frown\nStep 2: Interpretation: she is annoyed\nStep 3: Conclusion: angry",
    ],
)
def test_every_heading_style_yields_three_sections(text):
    score = score_cot(text, {"video"})
    assert score.structure.present == {"observations": True, "interpretation": True, "conclusion": True}
    assert score.structure.score == 1.0 and score.structure.ordered


def test_missing_section_and_wrong_order():
    only_two = score_cot("Observations: a frown\nConclusion: angry", {"video"}).structure
    assert only_two.present == {"observations": True, "interpretation": False, "conclusion": True}
    assert only_two.score == pytest.approx(2 / 3)
    backwards = score_cot("Conclusion: angry\nObservations: a frown", {"video"}).structure
    assert backwards.score == pytest.approx(2 / 3) and not backwards.ordered


def test_heading_needs_a_colon_or_a_line_of_its_own():
    sections = split_sections("Answer the question carefully: happy\nReasoning about it is hard\nConclusion:\n\n")
    assert sections.bodies == {}  # the conclusion heading has no body: not present
    assert sections.order == ["conclusion"]


def test_repeated_heading_bodies_are_joined():
    sections = split_sections("Conclusion: she is tense\nFinal answer: worried")
    assert sections.get("conclusion") == "she is tense\nworried"


# ---------------------------------------------------------------- consistency


def test_conclusion_following_the_reasoning_is_consistent():
    result = score_cot(BUILDER_STYLE, {"audio", "face"}, MER_LABELS).consistency
    assert result.consistent is True
    assert result.concluded_label == "worried" and result.concluded_primaries == ["fear"]
    assert result.implied_primaries == {"fear": 2}  # scared, anxious; "not angry" is negated


def test_conclusion_contradicting_the_reasoning_is_inconsistent():
    closed = score_cot(CONTRADICTED, {"video"}, MER_LABELS).consistency
    assert closed.consistent is False
    assert closed.implied_primaries == {"joy": 2} and closed.concluded_primaries == ["sadness"]
    open_vocab = score_cot(CONTRADICTED, {"video"}).consistency  # no label set: wheel primaries of the conclusion
    assert open_vocab.consistent is False and open_vocab.concluded_label is None


def test_plurality_decides_and_ties_all_count():
    mixed = "Observations: a smile, but tears.\nInterpretation: a little happy, yet sad and sorrowful.\nConclusion: {}"
    assert score_cot(mixed.format("sad"), {"video"}, MER_LABELS).consistency.consistent is True
    assert score_cot(mixed.format("happy"), {"video"}, MER_LABELS).consistency.consistent is False  # joy 1 < sadness 2
    tie = "Interpretation: she looks surprised, maybe afraid.\nConclusion: {}"
    assert score_cot(tie.format("surprise"), {"video"}, MER_LABELS).consistency.consistent is True
    assert score_cot(tie.format("worried"), {"video"}, MER_LABELS).consistency.consistent is True


@pytest.mark.parametrize(
    ("text", "labels", "because"),
    [
        ("Observations: she is angry", MER_LABELS, NO_CONCLUSION),
        ("Observations: a raised voice\nConclusion: angry", MER_LABELS, NO_IMPLIED_EMOTION),
        ("Interpretation: she is furious\nConclusion: angry or sad", MER_LABELS, NO_CONCLUDED_LABEL),
        ("Interpretation: she is furious\nConclusion: hard to say", None, NO_CONCLUDED_LABEL),
        ("Interpretation: she is helpless\nConclusion: helplessness", ["helplessness", "anger"], LABEL_NOT_ON_WHEEL),
    ],
)
def test_undecidable_consistency_is_none_with_its_reason(text, labels, because):
    result = score_cot(text, {"video"}, labels).consistency
    assert result.consistent is None and result.undecided_because == because


def test_emotion_words_longest_form_first_ignoring_ambiguous_and_negated_ones():
    counts = emotion_primaries("She looks like she is in love. He is not at all happy, but he isn't sad either; no anger.")
    assert dict(counts) == {"love": 1}


# ---------------------------------------------------------------- grounding


def test_voice_in_a_sample_without_audio_is_ungrounded():
    image_only = Sample(id="s1", media=Media(image="clips/s1.png"))
    assert sample_modalities(image_only) == {"video", "face"}
    text = "Observations:\n- Face: she smiles\n- Audio: her voice is bright\nInterpretation: she is happy\nConclusion: happy"
    result = score_cot(text, sample_modalities(image_only), MER_LABELS).grounding
    assert result.mentions == {"face": 2, "audio": 2}  # face, smiles / audio, voice
    assert result.ungrounded == {"audio": 2}
    assert result.score == pytest.approx(0.5)


def test_everything_grounded_when_the_sample_has_it_all():
    clip = Sample(id="s2", media=Media(video="clips/s2.mp4"), subtitle="I can't believe it")
    assert sample_modalities(clip) == {"video", "face", "audio", "subtitle"}
    text = "Her tone is sharp, she says 'no', the scene is dark and her brow is raised."
    result = grounding(text, sample_modalities(clip))
    assert result.mentions == {"audio": 1, "subtitle": 1, "video": 1, "face": 1}
    assert result.score == 1.0


def test_available_modalities_from_media_kinds():
    assert available_modalities(["audio"], has_subtitle=True) == {"audio", "subtitle"}
    assert available_modalities(["video"]) == {"video", "face", "audio"}
    with pytest.raises(ValueError, match=r"media_kinds: expected names from .*got \['smell'\]"):
        available_modalities(["smell"])


def test_grounding_is_none_without_modality_mentions():
    assert grounding("She is sad.", {"audio"}).score is None


def test_subtitle_mentions_need_a_subtitle_and_frames_count_as_video():
    assert grounding("the subtitle reads 'go away'", {"frame"}).ungrounded == {"subtitle": 1}
    assert grounding("the background is a hospital", {"frame"}).score == 1.0


def test_unknown_modality_names_the_field():
    with pytest.raises(ValueError, match=r"modalities: expected names from .*got \['smell'\]"):
        grounding("her voice", {"audio", "smell"})
    with pytest.raises(TypeError, match="modalities"):
        grounding("her voice", "audio")


# ---------------------------------------------------------------- data set


def test_aggregate_over_a_data_set():
    texts = [BUILDER_STYLE, CONTRADICTED, "I think the person is calm."]
    modalities = [{"audio", "face"}, {"face"}, {"audio"}]
    result = cot_metrics(texts, modalities, MER_LABELS)
    assert result.samples == 3
    assert result.structure_mean == pytest.approx((1 + 1 + 0) / 3)
    assert result.section_rates == pytest.approx({"observations": 2 / 3, "interpretation": 2 / 3, "conclusion": 2 / 3})
    assert result.consistency_rate == 0.5 and result.consistency_scored == 2
    assert result.consistency_none == 1 and result.consistency_none_because == {NO_CONCLUSION: 1}
    # BUILDER_STYLE 1.0 (all grounded), CONTRADICTED 1.0 (smile(s) with a face), the third mentions nothing
    assert result.grounding_mean == 1.0 and result.grounding_scored == 2 and result.grounding_none == 1
    assert result.ungrounded_mentions == {}
    assert result.to_json()["consistency_rate"] == 0.5


def test_summarise_is_the_aggregate_as_json_and_copes_with_no_answers():
    scores = [score_cot(BUILDER_STYLE, {"audio", "face"}, MER_LABELS)]
    assert summarise(scores) == cot_metrics([BUILDER_STYLE], [{"audio", "face"}], MER_LABELS).to_json()
    assert summarise([]) == {"samples": 0}


def test_aggregate_input_errors():
    with pytest.raises(ValueError, match="2 answers but 1 modality sets"):
        cot_metrics(["a", "b"], [{"audio"}])
    with pytest.raises(ValueError, match="no answers"):
        cot_metrics([], [])


# ---------------------------------------------------------------- judge rubric


def test_rubric_inputs_fill_the_cot_rubric_template():
    inputs = rubric_inputs(BUILDER_STYLE, "Audio: trembling voice. Emotion: worried")
    assert inputs == {"prediction": BUILDER_STYLE, "reference": "Audio: trembling voice. Emotion: worried"}
    judge_prompts = pytest.importorskip("emoreason.eval.judge_prompts")
    template = judge_prompts.load_prompts().template(RUBRIC_TEMPLATE)
    assert set(template.placeholders) <= set(inputs)
    assert BUILDER_STYLE in template.messages(inputs)[-1]["content"]


def test_rubric_reference_from_a_sample():
    sample = Sample(id="s3", targets=Targets(emotion="worried", clues={"audio": "trembling voice"}, reasoning="She fears the news."))
    reference = rubric_inputs("Conclusion: worried", sample)["reference"]
    assert reference == "Clues:\n- audio: trembling voice\nReasoning: She fears the news.\nEmotion: worried"
    with pytest.raises(ValueError, match="field 'targets'"):
        rubric_inputs("Conclusion: worried", Sample(id="s4"))
    with pytest.raises(ValueError, match="reference"):
        rubric_inputs("Conclusion: worried", "  ")
