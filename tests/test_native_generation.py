"""HF generation for the native kind: the backbone's own generate, greedy, on a clip."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from emoreason.media.video import FrameSampling
from emoreason.native.config import ComponentTraining, NativeModelConfig
from emoreason.native.conversation import NativeConversation, collate
from emoreason.native.featurizer import NativeFeaturizer
from emoreason.native.generation import generate_texts
from emoreason.native.model import NativeModel
from emoreason.native.processor import NativeProcessor
from native_twins import twin_dir, write_test_clip

QUESTION = [{"role": "user", "content": "<video> Which emotion?"}]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["qwen2_5_vl", "qwen2_5_omni_thinker", "internvl"])
def test_greedy_answer_after_training_batched_and_exported(kind, tmp_path_factory, tmp_path):
    clip = write_test_clip(tmp_path / "clip.mp4")
    base = twin_dir(tmp_path_factory, kind)
    torch.manual_seed(0)
    model = NativeModel.build(NativeModelConfig(base=base, components={"llm": ComponentTraining("lora")}))
    processor = NativeProcessor.from_pretrained(base)
    media = NativeFeaturizer(processor, FrameSampling(num_frames=4)).featurize({"video": clip}).inputs
    conversation = NativeConversation(processor)
    batch = collate(processor, [conversation.encode(QUESTION + [{"role": "assistant", "content": "surprised"}], media)])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-2)
    model.train()
    for _ in range(12):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()

    alone = generate_texts(model, conversation, [(QUESTION, media)], max_new_tokens=6)
    assert alone == ["surprised"]
    # Left padding must not change a row's answer: a longer text-only prompt shares the batch.
    longer = [{"role": "user", "content": "Which emotion does the speaker in this clip express, in one word?"}]
    batched = generate_texts(model, conversation, [(longer, {}), (QUESTION, media)], max_new_tokens=6)
    assert batched[1] == alone[0]

    exported = model.export(tmp_path / "export", processor)
    plain = tf.AutoModelForImageTextToText.from_pretrained(exported).eval()
    assert generate_texts(plain, NativeConversation(NativeProcessor.from_pretrained(exported)), [(QUESTION, media)], max_new_tokens=6) == alone
