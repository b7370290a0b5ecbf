"""The BLIP pre-training converter (released key names -> transformers, safetensors) and the
warning for a task-fine-tuned starting point."""

from __future__ import annotations

import argparse
import json
import re
import warnings

import pytest
import torch
from adapterlab.vl.models import (
    PRETRAINED_MARKER,
    ConversionError,
    TaskFinetunedWarning,
    convert_blip_checkpoint,
    load_blip,
    tiny_backbone,
)

TEXTS = ["a red circle", "what color is it?", "red"]

# transformers name -> the name in salesforce/BLIP's checkpoints (written out by hand)
RELEASED = [
    (r"vision_model\.embeddings\.class_embedding", "visual_encoder.cls_token"),
    (r"vision_model\.embeddings\.position_embedding", "visual_encoder.pos_embed"),
    (r"vision_model\.embeddings\.patch_embedding\.(\w+)", r"visual_encoder.patch_embed.proj.\1"),
    (r"vision_model\.post_layernorm\.(\w+)", r"visual_encoder.norm.\1"),
    (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm1\.(\w+)", r"visual_encoder.blocks.\1.norm1.\2"),
    (r"vision_model\.encoder\.layers\.(\d+)\.layer_norm2\.(\w+)", r"visual_encoder.blocks.\1.norm2.\2"),
    (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.qkv\.(\w+)", r"visual_encoder.blocks.\1.attn.qkv.\2"),
    (r"vision_model\.encoder\.layers\.(\d+)\.self_attn\.projection\.(\w+)", r"visual_encoder.blocks.\1.attn.proj.\2"),
    (r"vision_model\.encoder\.layers\.(\d+)\.mlp\.(fc\d)\.(\w+)", r"visual_encoder.blocks.\1.mlp.\2.\3"),
    (r"(text_encoder\..*|text_decoder\..*)", r"\1"),
]  # fmt: skip


def _released(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        for pattern, repl in RELEASED:
            if re.fullmatch(pattern, key):
                out[re.sub(pattern, repl, key)] = value.clone()
                break
        else:  # pragma: no cover
            raise AssertionError(f"no released name for {key}")
    return out


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A small BLIP pre-training checkpoint with the released key names (and the pre-training
    extras the converter must drop), plus the transformers model it came from."""
    tmp = tmp_path_factory.mktemp("blip")
    bb = tiny_backbone("vqa", TEXTS, tmp / "tok", image_size=16, seed=4)
    state = _released(bb.model.state_dict())
    assert "visual_encoder.blocks.1.attn.qkv.weight" in state
    extras = {
        "visual_encoder_m.cls_token": torch.zeros(1, 1, 64),
        "text_encoder_m.embeddings.word_embeddings.weight": torch.zeros(3, 64),
        "vision_proj.weight": torch.zeros(8, 64),
        "itm_head.weight": torch.zeros(2, 64),
        "image_queue": torch.zeros(8, 4),
        "temp": torch.tensor(0.07),
    }
    path = tmp / "model_base_capfilt_large.pth"
    torch.save({"model": {**state, **extras}, "config": {"image_size": 16}}, path)
    return path, bb, tmp


def test_converted_folders_hold_the_released_weights(released, tmp_path) -> None:
    path, bb, tmp = released
    out = convert_blip_checkpoint(path, tmp_path / "conv", tokenizer=tmp / "tok", heads=4)
    assert (out["vqa"] / "model.safetensors").is_file() and (
        out["vqa"] / PRETRAINED_MARKER
    ).is_file()
    original = bb.model.state_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error", TaskFinetunedWarning)  # pre-trained: no warning
        vqa, cap = load_blip("vqa", str(out["vqa"])), load_blip("caption", str(out["caption"]))
    assert vqa.model.config.vision_config.layer_norm_eps == 1e-6  # BLIP's ViT
    assert vqa.model.config.vision_config.image_size == 16
    for key, value in vqa.model.state_dict().items():
        assert torch.equal(value, original[key]), key
    for key, value in cap.model.state_dict().items():
        assert torch.equal(value, original[key]), key  # caption decoder = the text_decoder
    assert vqa.tokenizer.tokenize("what color is it?") == ["what", "color", "is", "it", "?"]


def test_pickled_code_is_refused_and_bad_checkpoints_named(tmp_path) -> None:
    bad = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "args": argparse.Namespace(lr=1)}, bad)
    with pytest.raises(
        ConversionError, match=r"evil\.pth: not loadable with torch\.load\(weights_only=True\)"
    ):
        convert_blip_checkpoint(bad, tmp_path / "out")
    other = tmp_path / "other.pth"
    torch.save({"model": {"x": torch.zeros(1)}}, other)
    with pytest.raises(ConversionError, match=r"other\.pth: not a BLIP checkpoint"):
        convert_blip_checkpoint(other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_task_finetuned_start_warns(released, tmp_path) -> None:
    _, bb, _ = released
    bb.save(tmp_path / "blip-vqa")  # a BlipForQuestionAnswering folder: fine-tuned for VQA
    with pytest.warns(TaskFinetunedWarning, match="already fine-tuned for vqa"):
        load_blip("vqa", str(tmp_path / "blip-vqa"))
    assert json.loads((tmp_path / "blip-vqa" / "config.json").read_text())["architectures"] == [
        "BlipForQuestionAnswering"
    ]
