"""The invariant matrix: every method x every tiny backbone (encoders and decoder LMs).

Per case: identity at init (where the method promises it), only adapter tensors train, disable
gives the base model, save/load round trip, merge (where supported) and, on decoders, no future
token leaks into earlier positions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    disable_adapters,
    get_adapter_parameters,
    get_config,
    load_adapter,
    merge_adapter,
    save_adapter,
    set_task_ids,
    trainable_summary,
)
from adapterlab.core.testing import BACKBONES, DECODERS, build_backbone
from adapterlab.core.tuners.mosa import set_mosa_expert


@dataclass(frozen=True)
class Promise:
    identity: bool = True  # a fresh adapter changes nothing
    disable_is_base: bool = True  # disable_adapters() gives the base model back
    merge: str | None = None  # "base": folded into base weights; "plain": a plain adapter


TASK_IDS = [0, 1, 0, 1]
TASK_METHODS = ("multitask", "hyperformer")
BOTTLENECK = Promise()
METHODS = {
    "pfeiffer": BOTTLENECK,
    "houlsby": BOTTLENECK,
    "parallel": BOTTLENECK,
    "houlsby_parallel": BOTTLENECK,
    "conformer": BOTTLENECK,
    "conformer_houlsby": BOTTLENECK,
    "conformer_sequential": BOTTLENECK,
    "mosa": Promise(merge="plain"),
    "lowbit": Promise(identity=False, merge="plain"),  # paper: up init N(0, 1e-3), not zero
    "mixda": Promise(identity=False),  # the gate mixes zero adapters into the layer output
    "lora": Promise(merge="base"),
    "dora": Promise(merge="base"),
    "rslora": Promise(merge="base"),
    "poly": Promise(merge="base"),
    "mhr": Promise(merge="base"),
    "prompt": Promise(identity=False),
    "prompt_deep": Promise(identity=False),
    "prefix": Promise(identity=False),
    "p_adapter": BOTTLENECK,
    "compacter": Promise(merge="plain"),
    "compacter++": Promise(merge="plain"),
    "seq_bn_inv": BOTTLENECK,
    "double_seq_bn_inv": BOTTLENECK,
    "multitask_half_shared": BOTTLENECK,
    "hyperformer": Promise(identity=False),  # generated LN gain/bias: near, not exactly, identity
    "hyperformer++": Promise(identity=False),
    "bitfit": Promise(merge="base"),
    "linear_probe": Promise(disable_is_base=False),
    "full": Promise(disable_is_base=False),
}
_NOT_LINEAR = "PEFT's Poly supports nn.Linear only"
# (method, backbone) -> the error the method raises there, instead of running
UNSUPPORTED: dict[tuple[str, str], str] = {
    ("poly", "toy"): _NOT_LINEAR,  # q/v live in nn.MultiheadAttention's packed projection
    ("mhr", "toy"): _NOT_LINEAR,
    ("poly", "openclip"): _NOT_LINEAR,
    ("mhr", "openclip"): _NOT_LINEAR,
    ("poly", "gpt2"): _NOT_LINEAR,  # GPT-2's c_attn is a Conv1D
    ("mhr", "gpt2"): _NOT_LINEAR,
    # p-adapter needs BERT-layout attention (self.query/key/value + output.dense)
    **{
        ("p_adapter", b): "no BERT-layout attention module"
        for b in ("toy", "ast", "openclip", "llama", "gpt2")
    },
}

CASES = [
    pytest.param(m, b, id=f"{m}-{b}")
    for m in METHODS
    for b in BACKBONES
    if (m, b) not in UNSUPPORTED
]


def _config(method: str, kind: str):
    extra: dict = {}
    if method == "linear_probe":
        extra["modules_to_save"] = ["head"]
    if method in ("prompt", "prompt_deep", "prefix"):
        extra["num_tokens"] = 3
    if method in (
        "pfeiffer",
        "houlsby",
        "parallel",
        "houlsby_parallel",
        "mosa",
        "lowbit",
        "p_adapter",
    ):
        extra["bottleneck_dim"] = 8  # tiny dims: a 2-unit ReLU bottleneck can die entirely
    if method.startswith("conformer"):
        extra.update(bottleneck_dim=8, kernel_size=3)
    if method == "mosa":
        extra["seed"] = 0
    if method == "mixda":
        extra.update(bottleneck_dim=4, gate_hidden=8, gate_layers=2, gate_dropout=0.0)
        if kind in DECODERS:
            extra["gate_pool"] = "token"  # "last" would read later tokens
    if method == "mhr":
        extra.update(n_splits=2, n_skills=2)
    if method.startswith("compacter"):
        extra.update(bottleneck_dim=8, phm_dim=2)  # feature sizes 16/32 divide by phm_dim
    if method.startswith("multitask"):
        extra.update(bottleneck_dim=8, n_tasks=2)
    if method.startswith("hyperformer"):
        extra.update(
            n_tasks=2, bottleneck_dim=8, task_embedding_dim=8, task_hidden_dim=16, projected_dim=8
        )
    if method.endswith("_inv"):
        extra["bottleneck_dim"] = 8
        # no token embeddings: the coupling goes on the embedded features
        extra["embedding_module"] = {"toy": "backbone.embed", "openclip": "backbone.ln_pre"}.get(
            kind
        )
    return get_config(method, **extra)


def _forward(model, x) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def _train(model, x, method: str, steps: int = 3) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    target = torch.arange(x.shape[0]) % 3
    experts = get_config("mosa").num_experts
    if method == "mosa":  # an expert learns only when drawn (its down half once its up is
        steps = 2 * experts  # nonzero): run each one twice
    model.train()
    for step in range(steps):
        if method == "mosa":
            set_mosa_expert(model, step % experts)
        out = model(x)
        logits = out[:, -1] if out.dim() == 3 else out  # decoders: the last position
        loss = torch.nn.functional.cross_entropy(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if method == "mosa":
        set_mosa_expert(model, None)
    model.eval()


def assert_no_future_leak(model, x: torch.Tensor, t: int) -> None:
    """Changing token ``t`` leaves every output at positions ``< t`` unchanged (and changes
    position ``t``, so the check can fail)."""
    perturbed = x.clone()
    perturbed[:, t] = (perturbed[:, t] + 1 - 3) % 47 + 3  # another real token id (3..49)
    out, out_perturbed = _forward(model, x), _forward(model, perturbed)
    torch.testing.assert_close(out_perturbed[:, :t], out[:, :t], rtol=0, atol=1e-6)
    assert not torch.allclose(out_perturbed[:, t], out[:, t])


@pytest.mark.parametrize(("method", "kind"), CASES)
def test_invariants(method: str, kind: str, tmp_path) -> None:
    promise = METHODS[method]
    base, x = build_backbone(kind)
    base_out = _forward(base, x)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    model, _ = build_backbone(kind)
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "fan_in_fan_out")  # PEFT: GPT-2's Conv1D
        add_adapter(model, _config(method, kind))
    if method.startswith(TASK_METHODS):  # a batch that mixes two tasks
        set_task_ids(model, TASK_IDS)
    summary = trainable_summary(model)
    assert 0 < summary.trainable <= summary.total
    if method != "full":
        assert summary.trainable < summary.total
    if promise.identity:
        torch.testing.assert_close(_forward(model, x), base_out, rtol=0, atol=1e-6)

    adapter_params = get_adapter_parameters(model)
    before = [p.detach().clone() for p in adapter_params]
    requires = {id(p) for p in model.parameters() if p.requires_grad}
    assert requires == {id(p) for p in adapter_params}
    _train(model, x, method)
    changed = [not torch.equal(b, p.detach()) for b, p in zip(before, adapter_params)]
    assert all(changed), f"{sum(not c for c in changed)} adapter tensors did not change"
    if method != "full":
        # every base tensor is bit-identical (merged views of parametrised biases included)
        adapter_ids = {id(p) for p in adapter_params}
        for name, p in model.state_dict(keep_vars=True).items():
            if id(p) in adapter_ids or not isinstance(p, torch.nn.Parameter):
                continue
            key = name.replace(".base_layer", "").replace(".parametrizations.", ".")
            key = key.replace(".original", "")
            assert torch.equal(p.detach(), base_state[key]), name

    trained_out = _forward(model, x)
    assert not torch.allclose(trained_out, base_out)
    if kind in DECODERS:
        assert_no_future_leak(model, x, t=4)

    if promise.disable_is_base:
        with disable_adapters(model):
            torch.testing.assert_close(_forward(model, x), base_out, rtol=0, atol=0)
        torch.testing.assert_close(_forward(model, x), trained_out, rtol=0, atol=0)

    save_adapter(model, tmp_path / "adapter")
    fresh, _ = build_backbone(kind)
    torch.manual_seed(2)
    load_adapter(fresh, tmp_path / "adapter")
    if method.startswith(TASK_METHODS):
        set_task_ids(fresh, TASK_IDS)
    torch.testing.assert_close(_forward(fresh, x), trained_out, rtol=1e-5, atol=1e-6)

    if promise.merge is not None:
        merge_adapter(fresh)
        merged_out = _forward(fresh, x)
        torch.testing.assert_close(merged_out, trained_out, rtol=1e-4, atol=1e-5)
        if promise.merge == "base":
            assert not any(".base_layer" in n or "lora_" in n for n, _ in fresh.named_modules())
            assert not any("parametrizations" in n for n, _ in fresh.named_parameters())
        if kind in DECODERS:
            assert_no_future_leak(fresh, x, t=2)


@pytest.mark.parametrize(
    ("method", "kind"), [pytest.param(*k, id="-".join(k)) for k in UNSUPPORTED]
)
def test_unsupported_pairs_refuse_clearly(method: str, kind: str) -> None:
    model, x = build_backbone(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=UNSUPPORTED[(method, kind)]):
        add_adapter(model, _config(method, kind))
    assert model.state_dict().keys() == before.keys()
