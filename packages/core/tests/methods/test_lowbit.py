"""Low-bit adapters (Bi-Adapter): codebook, straight-through estimator, packed file, exact reload."""

from __future__ import annotations

import math

import pytest
import torch
from adapterlab.core import (
    BottleneckConfig,
    LowBitConfig,
    add_adapter,
    get_adapter_parameters,
    get_config,
    list_adapters,
    load_adapter,
    merge_adapter,
    save_adapter,
)
from adapterlab.core.testing import Classifier, ToyTransformer, build_backbone
from adapterlab.core.tuners.lowbit import QuantLinear
from adapterlab.core.tuners.lowbit.quant import (
    STD_EPS,
    normal_codebook,
    pack_bits,
    ste_quantise,
    unpack_bits,
)
from safetensors.torch import load_file
from scipy.stats import norm
from torch import nn


def _train(model: nn.Module, x: torch.Tensor, steps: int = 3, lr: float = 5e-2) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    target = torch.arange(x.shape[0]) % 3
    model.train()
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def _quant_layers(model: nn.Module) -> list[QuantLinear]:
    return [m for m in model.modules() if isinstance(m, QuantLinear)]


def test_one_bit_levels_are_the_normal_quartile_midpoints() -> None:
    levels, thresholds = normal_codebook(1)
    q = norm.ppf(0.75)  # 0.6745: the median of each half of N(0, 1)
    torch.testing.assert_close(
        levels, torch.tensor([-q, q], dtype=torch.float32), rtol=0, atol=1e-6
    )
    assert abs(levels[1].item() - 0.6745) < 1e-4
    assert abs(levels[1].item() - math.sqrt(2 / math.pi)) > 0.1  # not the Lloyd-Max centroid
    assert thresholds.tolist() == [0.0]


@pytest.mark.parametrize(("bits", "tol"), [(1, 1e-7), (2, 1e-6), (4, 1e-6), (8, 5e-3)])
def test_codebook_is_a_quantile_midpoint_fixed_point(bits: int, tol: float) -> None:
    """Every level is the N(0,1) quantile at the middle of its cell's probability mass (8 bits:
    500 iterations, as the authors, leave a small residual)."""
    levels, thresholds = normal_codebook(bits)
    lv = levels.double().numpy()
    assert len(lv) == 2**bits and len(thresholds) == 2**bits - 1
    assert (lv[1:] > lv[:-1]).all()
    assert abs(lv + lv[::-1]).max() < 1e-6  # symmetric
    cuts = (lv[1:] + lv[:-1]) / 2
    edges = [0.0, *norm.cdf(cuts), 1.0]
    expected = norm.ppf([(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])])
    assert abs(expected - lv).max() < tol
    torch.testing.assert_close(thresholds.double(), torch.tensor(cuts), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_pack_unpack_round_trip(bits: int) -> None:
    g = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (1001,), generator=g)
    packed = pack_bits(codes, bits)
    assert packed.dtype == torch.uint8
    assert packed.numel() == math.ceil(1001 * bits / 8)
    assert torch.equal(unpack_bits(packed, bits, 1001), codes)
    with pytest.raises(ValueError, match="codes must lie"):
        pack_bits(torch.tensor([2**bits]), bits)


def test_straight_through_estimator_passes_the_gradient() -> None:
    levels, thresholds = normal_codebook(2)
    w = torch.randn(40, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = ste_quantise(w, levels, thresholds)
    nearest = levels[(w.detach()[:, None] - levels[None]).abs().argmin(dim=1)]
    assert torch.equal(out.detach(), nearest)  # the value is the codebook level exactly
    c = torch.randn(40, generator=torch.Generator().manual_seed(1))
    (out * c).sum().backward()
    assert torch.equal(w.grad, c)  # identity gradient through the rounding


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quant_linear_applies_the_standardised_codebook_weight(bits: int) -> None:
    layer = QuantLinear(12, 5, bits)
    with torch.no_grad():
        layer.weight.normal_(0.3, 2.0)
    w = layer.weight.detach()
    mean, std = w.mean(), w.std()  # unbiased std, as the authors
    z = (w - mean) / (std + STD_EPS)
    levels, _ = normal_codebook(bits)
    idx = (z[..., None] - levels).abs().argmin(dim=-1)  # nearest level (authors' ``dump``)
    expected = levels[idx] * std + mean
    got = layer.quantised_weight()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert got.detach().unique().numel() <= 2**bits
    x = torch.randn(3, 12)
    out = layer(x)
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_one_bit_file_is_at_most_1_25_of_fp32() -> None:
    """768 x 32 and 32 x 768 matrices (ViT-B width, the paper's dim 32) in two blocks."""

    def model() -> nn.Module:
        torch.manual_seed(0)
        return Classifier(ToyTransformer(features=6, dim=768), 768, "tokens")

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        low = add_adapter(model(), get_config("lowbit", bits=1, bottleneck_dim=32))
        fp = add_adapter(model(), get_config("lowbit", bits=32, bottleneck_dim=32))
        low_path = save_adapter(low, Path(tmp) / "bit1") / "adapter.safetensors"
        fp_path = save_adapter(fp, Path(tmp) / "bit32") / "adapter.safetensors"
        weights = sum(p.numel() for p in get_adapter_parameters(low))
        assert weights == 2 * 2 * 768 * 32  # no biases
        low_size, fp_size = low_path.stat().st_size, fp_path.stat().st_size
        assert fp_size >= 4 * weights
        assert low_size * 25 <= fp_size, (low_size, fp_size)
        stored = load_file(str(low_path))
    assert all(t.dtype != torch.float32 or t.numel() == 2 for t in stored.values())
    codes = [k for k in stored if k.endswith(".qcodes")]
    assert len(codes) == 4 and all(stored[k].numel() == 768 * 32 // 8 for k in codes)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_save_load_reproduces_outputs_exactly(bits: int, tmp_path) -> None:
    model, x = build_backbone("toy")
    add_adapter(model, get_config("lowbit", bits=bits, bottleneck_dim=8, scaling=1.0))
    _train(model, x)
    with torch.no_grad():
        out = model(x)
    applied = [layer.quantised_weight().detach().clone() for layer in _quant_layers(model)]
    save_adapter(model, tmp_path / "a")

    fresh, _ = build_backbone("toy")
    torch.manual_seed(5)  # the injected adapter starts elsewhere; loading overwrites it
    load_adapter(fresh, tmp_path / "a").eval()
    with torch.no_grad():
        assert torch.equal(fresh(x), out)
    for layer, w in zip(_quant_layers(fresh), applied, strict=True):
        assert layer.frozen and torch.equal(layer.quantised_weight(), w)

    # saving the loaded adapter again writes the same codes and statistics
    save_adapter(fresh, tmp_path / "b")
    first = load_file(str(tmp_path / "a" / "adapter.safetensors"))
    second = load_file(str(tmp_path / "b" / "adapter.safetensors"))
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_loaded_adapter_resumes_training(tmp_path) -> None:
    model, x = build_backbone("toy")
    add_adapter(model, get_config("lowbit", bits=2, bottleneck_dim=8))
    _train(model, x)
    save_adapter(model, tmp_path / "a")
    fresh, _ = build_backbone("toy")
    load_adapter(fresh, tmp_path / "a")
    before = [p.detach().clone() for p in get_adapter_parameters(fresh)]
    _train(fresh, x, steps=2)
    assert not any(layer.frozen for layer in _quant_layers(fresh))
    assert all(not torch.equal(b, p) for b, p in zip(before, get_adapter_parameters(fresh)))


def test_corrupt_codes_are_rejected(tmp_path) -> None:
    from safetensors.torch import save_file

    model, _ = build_backbone("toy")
    add_adapter(model, get_config("lowbit", bits=1, bottleneck_dim=8))
    save_adapter(model, tmp_path / "a")
    path = tmp_path / "a" / "adapter.safetensors"
    tensors = load_file(str(path))
    key = next(k for k in tensors if k.endswith(".qcodes"))
    tensors[key] = tensors[key][:1].clone()
    save_file(tensors, str(path))
    fresh, _ = build_backbone("toy")
    with pytest.raises(ValueError, match="packed codes hold"):
        load_adapter(fresh, tmp_path / "a")


def test_merge_gives_the_plain_adapter_with_dequantised_weights() -> None:
    model, x = build_backbone("toy")
    add_adapter(model, get_config("lowbit", bits=1, bottleneck_dim=8, scaling=1.0))
    _train(model, x)
    with torch.no_grad():
        out = model(x)
    applied = [layer.quantised_weight().detach().clone() for layer in _quant_layers(model)]
    merge_adapter(model)
    assert isinstance(list_adapters(model)["default"], BottleneckConfig)
    assert not _quant_layers(model)
    with torch.no_grad():
        torch.testing.assert_close(model(x), out, rtol=0, atol=1e-6)
    plain = [m for n, m in model.named_modules() if n.endswith("adapters.default")]
    merged = [w for a in plain for w in (a.down.weight, a.up.weight)]
    assert all(torch.equal(a, b) for a, b in zip(merged, applied, strict=True))
    assert isinstance(LowBitConfig(), BottleneckConfig)
