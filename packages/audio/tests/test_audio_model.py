"""AST loading: position embeddings adapted from the checkpoint (never zeroed), head on the token mean."""

from __future__ import annotations

import json
import re

import pytest
import torch
from adapterlab.audio.model import (
    DEFAULT_CHECKPOINT,
    ASTClassifier,
    ModelLoadError,
    adapt_position_embeddings,
    grid_shape,
    load_ast,
)
from safetensors.torch import load_file, save_file
from transformers import ASTModel


def _checkpoint_grid(ckpt):
    sd = load_file(ckpt / "model.safetensors")
    key = next(k for k in sd if k.endswith("position_embeddings"))
    return sd[key]


def test_100_frame_model_uses_checkpoint_position_embeddings(tiny_ckpt):
    saved = _checkpoint_grid(tiny_ckpt)  # [1, 2 + F*T, D] at 1024 frames
    model = load_ast(tiny_ckpt, max_length=100)
    cfg = model.config
    f_old, t_old = grid_shape(cfg, 1024)
    f_new, t_new = grid_shape(cfg, 100)
    assert t_new < t_old and f_new == f_old
    pe = model.embeddings.position_embeddings.detach()
    assert pe.shape == (1, 2 + f_new * t_new, cfg.hidden_size)
    assert pe.abs().min(dim=-1).values.gt(0).all()  # no zeroed rows
    torch.testing.assert_close(pe[:, :2], saved[:, :2])  # CLS and distillation kept
    grid = saved[0, 2:].reshape(f_old, t_old, -1)
    start = t_old // 2 - t_new // 2  # the AST repo's centre crop along time
    torch.testing.assert_close(pe[0, 2:].reshape(f_new, t_new, -1), grid[:, start : start + t_new])
    out = model(torch.randn(2, 100, 128)).last_hidden_state
    assert out.shape == (2, 2 + f_new * t_new, cfg.hidden_size)


def test_hf_mismatch_loading_would_drop_them(tiny_ckpt):
    """What PETL-AST did: from_pretrained(max_length=L, ignore_mismatched_sizes=True) - here for contrast."""
    hf = ASTModel.from_pretrained(tiny_ckpt, max_length=100, ignore_mismatched_sizes=True)
    ours = load_ast(tiny_ckpt, max_length=100)
    hf_pe, our_pe = hf.embeddings.position_embeddings, ours.embeddings.position_embeddings
    assert hf_pe.shape == our_pe.shape
    assert not torch.allclose(hf_pe, our_pe)  # the checkpoint's values are not what HF gives
    saved = _checkpoint_grid(tiny_ckpt)
    assert not torch.allclose(hf_pe[:, :2], saved[:, :2])  # even CLS/dist rows are re-initialised


def test_longer_input_interpolates_bilinearly():
    f, t, d = 3, 4, 2
    grid = torch.arange(f * t * d, dtype=torch.float32).reshape(1, f * t, d)
    pos = torch.cat([torch.full((1, 2, d), -1.0), grid], dim=1)
    out = adapt_position_embeddings(pos, (f, t), (f, 7))
    assert out.shape == (1, 2 + f * 7, d)
    assert torch.equal(out[:, :2], pos[:, :2])
    new = out[0, 2:].reshape(f, 7, d)
    old = grid[0].reshape(f, t, d)
    torch.testing.assert_close(
        new[:, 0], old[:, 0]
    )  # edges map to edges (align_corners=False clamps)
    torch.testing.assert_close(new[:, -1], old[:, -1])
    assert torch.all(new[:, 1:, 0] >= new[:, :-1, 0])  # monotone along time, like the source grid
    same = adapt_position_embeddings(pos, (f, t), (f, t))
    assert torch.equal(same, pos)
    with pytest.raises(ValueError, match="do not match"):
        adapt_position_embeddings(pos, (f, t + 1), (f, t))


def test_classifier_pools_the_mean_of_all_tokens(tiny_ckpt):
    model = ASTClassifier(load_ast(tiny_ckpt, max_length=64), num_classes=5).eval()
    x = torch.randn(3, 64, 128)
    tokens = model.ast(input_values=x).last_hidden_state
    torch.testing.assert_close(model(x), model.head(tokens.mean(dim=1)))
    # the final LayerNorm is applied to every token before pooling
    torch.testing.assert_close(
        tokens.mean(-1), torch.zeros_like(tokens.mean(-1)), atol=1e-5, rtol=0
    )


def test_offline_load_gives_clear_error():
    with pytest.raises(ModelLoadError) as info:
        load_ast(DEFAULT_CHECKPOINT, max_length=100, local_files_only=True)
    msg = str(info.value)
    assert DEFAULT_CHECKPOINT in msg and "local folder" in msg and "tiny" in msg
    with pytest.raises(ModelLoadError):
        load_ast("/definitely/not/a/checkpoint", max_length=100)


def _legacy_name(key: str) -> str:
    """transformers-4.x ASTForAudioClassification key (the format of the hub checkpoint)."""
    key = re.sub(r"^layers\.(\d+)\.", r"encoder.layer.\1.", key)
    key = key.replace("attention.q_proj", "attention.attention.query")
    key = key.replace("attention.k_proj", "attention.attention.key")
    key = key.replace("attention.v_proj", "attention.attention.value")
    key = key.replace("attention.o_proj", "attention.output.dense")
    key = key.replace("mlp.fc1", "intermediate.dense").replace("mlp.fc2", "output.dense")
    return "audio_spectrogram_transformer." + key


def test_loads_a_legacy_audio_classification_checkpoint(tiny_ckpt, tmp_path):
    src = ASTModel.from_pretrained(tiny_ckpt)
    sd = {_legacy_name(k): v.contiguous() for k, v in src.state_dict().items()}
    d = src.config.hidden_size
    sd |= {
        "classifier.layernorm.weight": torch.ones(d),
        "classifier.layernorm.bias": torch.zeros(d),
    }
    sd |= {"classifier.dense.weight": torch.zeros(3, d), "classifier.dense.bias": torch.zeros(3)}
    cfg = src.config.to_dict() | {"architectures": ["ASTForAudioClassification"]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    save_file(sd, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = load_ast(tmp_path, max_length=100)
    ref = load_ast(tiny_ckpt, max_length=100)
    for (name, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
