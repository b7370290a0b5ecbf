"""Every method builds on a tiny AST through adapterlab.core, and only the intended tensors train."""

from __future__ import annotations

import re

import pytest
import torch
from adapterlab.audio.methods import METHODS, adapter_config, apply_method
from adapterlab.audio.model import ASTClassifier, load_ast
from adapterlab.core import trainable_summary
from adapterlab.core.engine import TrainConfig, Trainer  # noqa: F401  (the engine accepts these models)
from transformers import ASTConfig, ASTModel

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

FRAMES = 48
ALWAYS = {"head.weight", "head.bias", "ast.layernorm.weight", "ast.layernorm.bias"}

# regex over trainable parameter names (besides ALWAYS) that each method may and must train
EXPECTED = {
    "linear": None,
    "bitfit": r".*\.deltas\.default",
    "prompt": r".*layers\.0\..*prompts",
    "prompt_deep": r".*layers\.\d\..*prompts",
    "prefix": r".*attention\.adapters\.default\.(key|value)",
    "lora": r".*attention\.[qv]_proj\.lora_[AB]\.default\.weight",
    "pfeiffer": r".*(mlp\.adapters\.default\..*|layernorm_after\..*)",
    "parallel": r".*(mlp\.adapters\.default\..*|layernorm_after\..*)",
    "houlsby": r".*((mlp|attention)\.adapters\.default\..*|layernorm_(after|before)\..*)",
    "houlsby_parallel": r".*((mlp|attention)\.adapters\.default\..*|layernorm_(after|before)\..*)",
    "conformer": r".*(mlp\.adapters\.default\..*|layernorm_after\..*)",
    "conformer_sequential": r".*(mlp\.adapters\.default\..*|layernorm_after\..*)",
    "conformer_houlsby": r".*((mlp|attention)\.adapters\.default\..*|layernorm_(after|before)\..*)",
    "conformer_houlsby_sequential": r".*((mlp|attention)\.adapters\.default\..*|layernorm_(after|before)\..*)",
}
IDENTITY_AT_INIT = {
    "linear",
    "full",
    "bitfit",
    "lora",
    *[m for m in METHODS if "houlsby" in m or "conformer" in m or m in ("pfeiffer", "parallel")],
}


def _model(ckpt, classes=4):
    torch.manual_seed(0)
    return ASTClassifier(load_ast(ckpt, max_length=FRAMES), classes)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "bitfit_original"])
def test_method_builds_and_only_intended_params_train(tiny_ckpt, method):
    model = _model(tiny_ckpt).eval()
    x = torch.randn(3, FRAMES, 128)
    with torch.no_grad():
        base = model(x)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    apply_method(model, method)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if method == "full":
        assert trainable == set(before)
    else:
        assert trainable >= ALWAYS
        extra = trainable - ALWAYS
        if EXPECTED[method] is None:
            assert not extra
        else:
            assert extra, method
            bad = [n for n in extra if not re.fullmatch(EXPECTED[method], n)]
            assert not bad, bad
        assert trainable_summary(model).percent < 10
    with torch.no_grad():
        out = model(x)
    if method in IDENTITY_AT_INIT:
        torch.testing.assert_close(out, base)  # zero-initialised branches: the base model at step 0
    # one optimiser step changes trainable tensors only; frozen base weights stay bit-identical
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
    opt.step()
    named = dict(model.named_parameters())
    for n, p in named.items():
        if not p.requires_grad:
            assert p.grad is None, n
    for n, old in before.items():
        if n in named and not named[n].requires_grad:
            assert torch.equal(named[n], old), n


def test_prompts_replace_the_distillation_token(tiny_ckpt):
    model = _model(tiny_ckpt).eval()
    n_tokens = model.ast.embeddings.position_embeddings.shape[1]
    seen = []
    model.ast.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[1]))
    apply_method(model, "prompt_deep", num_prompts=25)
    out = model.ast(input_values=torch.randn(2, FRAMES, 128)).last_hidden_state
    assert out.shape[1] == n_tokens - 1 + 25  # distillation token dropped, 25 prompts in
    cfg = adapter_config("prompt_deep", hidden_size=64)
    assert (cfg.position, cfg.replace, cfg.num_tokens, cfg.deep) == (1, 1, 25, True)


def test_residual_is_a_real_bool(tiny_ckpt):
    with pytest.raises(TypeError, match="bool"):
        adapter_config(
            "parallel", hidden_size=64, residual="False"
        )  # the original's type=bool trap
    model = _model(tiny_ckpt).eval()
    x = torch.randn(2, FRAMES, 128)
    with torch.no_grad():
        base = model(x)
    cfg = apply_method(model, "parallel", residual=True)
    assert cfg.residual is True and cfg.use_residual()
    with torch.no_grad():
        assert not torch.allclose(model(x), base)  # the sublayer input (LN output) is added on top
    assert adapter_config("parallel", hidden_size=64).use_residual() is False
    assert adapter_config("pfeiffer", hidden_size=64).use_residual() is True


def test_conformer_kernel_by_task_and_lr_defaults():
    assert adapter_config("conformer", hidden_size=64, task="sound").kernel_size == 8
    assert adapter_config("conformer", hidden_size=64, task="speech").kernel_size == 31
    lrs = {
        m: METHODS[m].lr
        for m in ("linear", "full", "bitfit", "lora", "parallel", "prompt", "prefix")
    }
    assert lrs == {
        "linear": 1e-3,
        "full": 5e-5,
        "bitfit": 5e-3,
        "lora": 5e-3,
        "parallel": 5e-3,
        "prompt": 1e-2,
        "prefix": 1e-2,
    }


# Parameter counts of the paper's table (12 layers, d = 768) per layer, head and final LN excluded.
PAPER_PER_LAYER = {
    "pfeiffer": 248_976 // 12,  # bottleneck r=12 + layernorm_after
    "houlsby": 497_952 // 12,  # at MHSA and FFN + both LayerNorms
    "lora": 221_184 // 12,  # rank 6 on W_q, W_v
    "conformer": 270_720 // 12,  # r=8, k=31 (speech), its own LN + layernorm_after
    "prefix": 221_184 // 12,  # 12 keys + 12 values
    "prompt_deep": 230_400 // 12,  # 25 prompts per layer
    "prompt": 230_400,  # SPT-300: 300 prompts before the first layer only (the paper's 230K)
    "bitfit": 8_448,  # Linear and LayerNorm biases of one block
}


@pytest.mark.parametrize("method", list(PAPER_PER_LAYER))
def test_study_sizes_reproduce_the_paper_counts(method):
    cfg = ASTConfig(
        hidden_size=768,
        num_hidden_layers=1,
        num_attention_heads=12,
        intermediate_size=3072,
        max_length=64,
    )
    with torch.device("meta"):
        model = ASTClassifier(ASTModel(cfg), 50)
    apply_method(model, method, task="speech")
    head_and_ln = 768 * 50 + 50 + 2 * 768
    assert trainable_summary(model).trainable - head_and_ln == PAPER_PER_LAYER[method]
