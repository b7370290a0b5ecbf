"""CLIP2Point pre-training loss: NT-Xent formula, total loss with the learnable w."""

import math

import pytest
import torch
import torch.nn.functional as F
from adapterlab.pointclip.models.losses import Clip2PointLoss, nt_xent


def _nt_xent_by_hand(a: torch.Tensor, b: torch.Tensor, t: float) -> float:
    z = F.normalize(torch.cat([a, b]).double(), dim=1)
    n = z.shape[0]
    half = n // 2
    total = 0.0
    for i in range(n):
        pos = (i + half) % n
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[pos]) / t) / den)
    return total / n


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_nt_xent_equals_formula(t):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    assert float(nt_xent(a, b, t)) == pytest.approx(_nt_xent_by_hand(a, b, t), rel=1e-5)


def test_nt_xent_is_symmetric_and_scale_invariant():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    assert torch.allclose(nt_xent(a, b), nt_xent(b, a), atol=1e-6)
    assert torch.allclose(nt_xent(3 * a, 0.5 * b), nt_xent(a, b), atol=1e-5)


def test_nt_xent_prefers_aligned_pairs():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(8, 16, generator=g)
    assert nt_xent(a, a + 0.01 * torch.randn(8, 16, generator=g)) < nt_xent(a, a.roll(1, 0))


def test_nt_xent_rejects_bad_shapes():
    with pytest.raises(ValueError, match="B, D"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent(torch.randn(1, 3), torch.randn(1, 3))


def test_total_loss_formula_with_w():
    g = torch.Generator().manual_seed(3)
    d1, d2, im = (torch.randn(5, 8, generator=g) for _ in range(3))
    crit = Clip2PointLoss(temperature=0.07)
    with torch.no_grad():
        crit.w.fill_(1.7)
    out = crit(d1, d2, im)
    l_img = nt_xent(0.5 * (d1 + d2), im, 0.07)
    l_depth = nt_xent(d1, d2, 0.07)
    expected = l_img + l_depth / 1.7**2 + math.log(2.7)
    assert float(out["loss"].detach()) == pytest.approx(float(expected), rel=1e-6)
    assert float(out["loss_image"]) == pytest.approx(float(l_img), rel=1e-6)
    assert float(out["loss_depth"]) == pytest.approx(float(l_depth), rel=1e-6)


def test_w_starts_at_one_and_learns():
    crit = Clip2PointLoss()
    assert isinstance(crit.w, torch.nn.Parameter) and crit.w.requires_grad
    assert float(crit.w.detach()) == 1.0
    g = torch.Generator().manual_seed(4)
    d1 = torch.randn(6, 8, generator=g, requires_grad=True)
    d2, im = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    out = crit(d1, d2, im)
    out["loss"].backward()
    # d total / d w = -2 L_depth / w^3 + 1 / (w + 1)
    expected = -2 * float(out["loss_depth"]) + 0.5
    assert float(crit.w.grad) == pytest.approx(expected, rel=1e-5)
    opt = torch.optim.SGD(crit.parameters(), lr=0.1)
    opt.step()
    assert float(crit.w.detach()) != 1.0


def test_image_side_gets_no_gradient():
    g = torch.Generator().manual_seed(5)
    im = torch.randn(4, 8, generator=g, requires_grad=True)
    d1 = torch.randn(4, 8, generator=g, requires_grad=True)
    Clip2PointLoss()(d1, d1 * 1.1, im)["loss"].backward()
    assert im.grad is None and d1.grad is not None


def test_w_below_minus_one_is_a_clear_error():
    crit = Clip2PointLoss()
    with torch.no_grad():
        crit.w.fill_(-1.5)
    with pytest.raises(FloatingPointError, match="log"):
        crit(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4))
