"""The invariant matrix: every method x every tiny backbone (see issue: core adapter API)."""

from __future__ import annotations

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
    trainable_summary,
)
from adapterlab.core.testing import BACKBONES, build_backbone

# preset -> (identity at init, disable == base, mergeable)
METHODS = {
    "pfeiffer": (True, True, False),
    "houlsby": (True, True, False),
    "parallel": (True, True, False),
    "houlsby_parallel": (True, True, False),
    "conformer": (True, True, False),
    "conformer_sequential": (True, True, False),
    "lora": (True, True, True),
    "dora": (True, True, True),
    "prompt": (False, True, False),
    "prompt_deep": (False, True, False),
    "prefix": (False, True, False),
    "bitfit": (True, True, True),
    "linear_probe": (True, False, False),
    "full": (True, False, False),
    "p_adapter": (True, True, False),
}
# p-adapter needs BERT-layout attention (query/key/value + output.dense)
UNSUPPORTED: set[tuple[str, str]] = {("p_adapter", b) for b in ("toy", "ast", "openclip")}

CASES = [
    pytest.param(m, b, id=f"{m}-{b}")
    for m in METHODS
    for b in BACKBONES
    if (m, b) not in UNSUPPORTED
]


def _config(method: str):
    extra = {"modules_to_save": ["head"]} if method == "linear_probe" else {}
    if method == "prompt" or method == "prompt_deep":
        extra["num_tokens"] = 3
    if method == "prefix":
        extra["num_tokens"] = 3
    if method in (
        "pfeiffer",
        "houlsby",
        "parallel",
        "houlsby_parallel",
        "conformer",
        "conformer_sequential",
        "p_adapter",
    ):
        extra["bottleneck_dim"] = 8  # tiny dims: a 2-unit ReLU bottleneck can die entirely
    return get_config(method, **extra)


def _train(model, x, steps: int = 3) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    target = torch.arange(x.shape[0]) % 3
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.mark.parametrize(("method", "kind"), CASES)
def test_invariants(method: str, kind: str, tmp_path) -> None:
    identity, disable_equals_base, mergeable = METHODS[method]
    base, x = build_backbone(kind)
    with torch.no_grad():
        base_out = base(x)
    base_state = {k: v.clone() for k, v in base.state_dict().items()}

    model, _ = build_backbone(kind)
    torch.manual_seed(1)
    add_adapter(model, _config(method))
    summary = trainable_summary(model)
    assert 0 < summary.trainable <= summary.total
    if method != "full":
        assert summary.trainable < summary.total
    if identity:
        with torch.no_grad():
            torch.testing.assert_close(model(x), base_out, rtol=0, atol=1e-6)

    adapter_params = get_adapter_parameters(model)
    before = [p.detach().clone() for p in adapter_params]
    requires = {id(p) for p in model.parameters() if p.requires_grad}
    assert requires == {id(p) for p in adapter_params}
    _train(model, x)
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

    with torch.no_grad():
        trained_out = model(x)
    assert not torch.allclose(trained_out, base_out)

    if disable_equals_base:
        with disable_adapters(model), torch.no_grad():
            torch.testing.assert_close(model(x), base_out, rtol=0, atol=0)
        with torch.no_grad():
            torch.testing.assert_close(model(x), trained_out, rtol=0, atol=0)

    save_adapter(model, tmp_path / "adapter")
    fresh, _ = build_backbone(kind)
    torch.manual_seed(2)
    load_adapter(fresh, tmp_path / "adapter")
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), trained_out, rtol=1e-5, atol=1e-6)

    if mergeable:
        merge_adapter(fresh)
        with torch.no_grad():
            torch.testing.assert_close(fresh(x), trained_out, rtol=1e-4, atol=1e-5)
        assert not any(".base_layer" in n or "lora_" in n for n, _ in fresh.named_modules())
        assert not any("parametrizations" in n for n, _ in fresh.named_parameters())
