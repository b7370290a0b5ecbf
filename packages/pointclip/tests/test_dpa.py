"""Dual-Path Adapter and PointCLIP inter-view adapter: shapes, init, logits formula."""

import pytest
import torch
import torch.nn.functional as F
from adapterlab.pointclip.models.adapters import (
    DualPathAdapter,
    InterViewAdapter,
    PointCLIPAdapterHead,
    SimplifiedViewAdapter,
    smooth_cross_entropy,
)

V, D, C, B = 6, 16, 5, 7


def _feats(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, V, D, generator=g), torch.randn(B, V, D, generator=g)


def test_simplified_adapter_shapes_and_view_weights():
    ad = SimplifiedViewAdapter(V, D)
    assert torch.equal(ad.view_weights.detach(), torch.full((V,), 0.5))
    assert ad.view_weights.requires_grad
    out = ad(_feats()[0])
    assert out.shape == (B, D)
    dropouts = [m.p for m in ad.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.075, 0.075]
    linears = [
        (m.in_features, m.out_features) for m in ad.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert linears == [(V * D, D), (D, D)]


def test_simplified_adapter_scales_views_by_weights():
    ad = SimplifiedViewAdapter(V, D).eval()
    x = _feats()[0]
    with torch.no_grad():
        ad.view_weights.fill_(1.0)
    y1 = ad(x)
    with torch.no_grad():
        ad.view_weights.fill_(0.5)
    assert torch.allclose(ad(2 * x), y1, atol=1e-5)


def test_dpa_cosine_logits_formula():
    g = torch.Generator().manual_seed(1)
    text = torch.randn(C, D, generator=g)
    dpa = DualPathAdapter(text, V).eval()
    pre, ori = _feats(2)
    logits = dpa(pre, ori)
    assert logits.shape == (B, C)
    fused = 0.5 * (dpa.pre_adapter(pre) + dpa.ori_adapter(ori))
    expected = F.normalize(fused, dim=-1) @ F.normalize(text, dim=-1).t()
    assert torch.allclose(logits, expected, atol=1e-6)
    assert logits.abs().max() <= 1.0 + 1e-6  # cosine, no logit scale
    assert torch.allclose(dpa.embed(pre, ori).norm(dim=-1), torch.ones(B), atol=1e-5)


def test_dpa_paths_are_independent_modules():
    dpa = DualPathAdapter(torch.randn(C, D), V)
    assert dpa.pre_adapter is not dpa.ori_adapter
    names = {n.split(".")[0] for n, _ in dpa.named_parameters()}
    assert names == {"pre_adapter", "ori_adapter"}
    assert not any(n.startswith("text") for n, _ in dpa.named_parameters())


def test_dpa_rejects_wrong_view_count():
    dpa = DualPathAdapter(torch.randn(C, D), V)
    with pytest.raises(ValueError, match=r"\[B, 6, 16\]"):
        dpa(torch.randn(B, V + 1, D), torch.randn(B, V + 1, D))


def test_interview_adapter_residual():
    ad = InterViewAdapter(V, D).eval()
    x = _feats(3)[0]
    adapted = ad.view_f(ad.global_f(x * ad.view_weights.view(1, -1, 1)))
    assert torch.allclose(ad(x), 0.6 * adapted + 0.4 * x.flatten(1), atol=1e-6)
    assert ad(x).shape == (B, V * D)


def test_pointclip_head_logits_use_tiled_text():
    text = torch.randn(C, D)
    head = PointCLIPAdapterHead(text, V).eval()
    x = _feats(4)[0]
    emb = F.normalize(head.adapter(x), dim=-1)
    expected = 100.0 * emb @ F.normalize(text.repeat(1, V), dim=-1).t()
    assert torch.allclose(head(x), expected, atol=1e-4)


def test_smooth_cross_entropy_formula():
    logits = torch.randn(3, 4)
    target = torch.tensor([0, 2, 3])
    q = torch.full((3, 4), 0.2 / 3)
    q[torch.arange(3), target] = 0.8
    expected = -(q * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(smooth_cross_entropy(logits, target, 0.2), expected, atol=1e-6)


# ---------------------------------------------------------------- few-shot sampling / training
from adapterlab.pointclip import (  # noqa: E402
    FewShotConfig,
    few_shot_split,
    train_fewshot_head,
)
from adapterlab.pointclip.models.features import ViewFeatures  # noqa: E402


def test_few_shot_split_caps_per_class_and_is_seeded():
    labels = [0] * 30 + [1] * 25 + [2] * 5
    shots, val = few_shot_split(labels, 16, seed=3, val_fraction=0.2)
    counts = {c: sum(labels[i] == c for i in shots) for c in (0, 1, 2)}
    assert counts[0] == 16 and counts[1] == 16 and counts[2] == 4  # 5 - 1 for validation
    assert not set(shots) & set(val)
    assert {labels[i] for i in val} == {0, 1, 2}
    assert few_shot_split(labels, 16, seed=3, val_fraction=0.2) == (shots, val)
    assert few_shot_split(labels, 16, seed=4, val_fraction=0.2) != (shots, val)
    for k in (1, 2, 4, 8):
        s, v = few_shot_split(labels, k, seed=0)
        left = {c: sum(labels[i] == c for i in range(len(labels)) if i not in v) for c in (0, 1, 2)}
        assert all(sum(labels[i] == c for i in s) == min(k, left[c]) for c in (0, 1, 2))
        assert not set(s) & set(v)
    with pytest.raises(ValueError, match="shots"):
        few_shot_split(labels, 0)


def _features(n_per_class, classes, seed, noise=1.0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, 1, D, generator=torch.Generator().manual_seed(99))
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    pre = centers[labels] + noise * torch.randn(len(labels), V, D, generator=g)
    ori = centers[labels] + noise * torch.randn(len(labels), V, D, generator=g)
    return ViewFeatures({"pre": pre, "ori": ori}, labels)


def test_dpa_learns_and_model_selection_ignores_the_test_split(tmp_path):
    torch.manual_seed(0)
    train, test = _features(12, C, 0), _features(6, C, 1)
    text = torch.randn(C, D, generator=torch.Generator().manual_seed(5))
    cfg = FewShotConfig(shots=8, epochs=6, batch_size=16, seed=0, val_fraction=0.25)
    kw = {"progress": False, "device": "cpu"}
    a = train_fewshot_head(train, test, text, tmp_path / "a", cfg, **kw)
    assert a.num_train == 8 * C and a.test_accuracy > 2.0 / C  # learns (chance = 1/C)
    # the same run with scrambled test labels: identical selection, only the test score moves
    scrambled = ViewFeatures(test.features, (test.labels + 1) % C)
    b = train_fewshot_head(train, scrambled, text, tmp_path / "b", cfg, **kw)
    assert b.best_step == a.best_step and b.val_accuracy == a.val_accuracy
    for (k, x), (_, y) in zip(a.head.state_dict().items(), b.head.state_dict().items()):
        assert torch.equal(x, y), k
    assert b.test_accuracy != a.test_accuracy
    assert (tmp_path / "a" / "best" / "adapter.safetensors").is_file()


def test_pointclip_head_trains_with_the_engine(tmp_path):
    train, test = _features(12, C, 2, noise=0.5), _features(6, C, 3, noise=0.5)
    text = torch.randn(C, D, generator=torch.Generator().manual_seed(6))
    cfg = FewShotConfig(head="pointclip", shots=8, epochs=15, batch_size=16, seed=0)
    res = train_fewshot_head(train, test, text, tmp_path, cfg, progress=False, device="cpu")
    assert res.test_accuracy > 2.0 / C


def test_pointclip_published_recipe_sgd_cosine_and_augmented_copies(tmp_path):
    """PointCLIP's recipe: SGD 0.01, cosine after a warm-up epoch; augmented copies of exactly
    the drawn shots join the training set, validation stays un-augmented."""
    import yaml

    train, test = _features(12, C, 2, noise=0.5), _features(6, C, 3, noise=0.5)
    text = torch.randn(C, D, generator=torch.Generator().manual_seed(6))
    asked = []

    def augmented(idx):
        asked.append(list(idx))
        g = torch.Generator().manual_seed(len(asked))
        sub = train.subset(idx)
        jitter = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in sub.features.items()}
        return [ViewFeatures(jitter, sub.labels), ViewFeatures(sub.features, sub.labels)]

    cfg = FewShotConfig(
        head="pointclip",
        shots=8,
        epochs=5,
        batch_size=16,
        lr=0.01,
        optimizer="sgd",
        scheduler="cosine",
        warmup_epochs=1,
        weight_decay=5e-4,
    )
    res = train_fewshot_head(
        train, test, text, tmp_path, cfg, progress=False, device="cpu", augmented=augmented
    )
    shots, val = few_shot_split(train.labels, 8, 0, cfg.val_fraction)
    assert asked == [shots] and not set(asked[0]) & set(val)
    assert res.num_train == 3 * 8 * C and res.num_val == len(val)
    saved = yaml.safe_load((res.run_dir / "config.yaml").read_text())
    engine = saved.get("train", saved)
    assert engine["optimizer"] == "sgd" and engine["scheduler"] == "cosine"
    assert engine["warmup_steps"] == (3 * 8 * C) // 16
    assert res.test_accuracy > 2.0 / C


def test_scale_and_shift_matches_pointclip_ranges():
    from adapterlab.pointclip.data.transforms import scale_and_shift

    pts = torch.rand(64, 512, 3) + 0.5  # strictly positive, so per-axis ratios are defined
    zero = scale_and_shift(torch.zeros(64, 512, 3), torch.Generator().manual_seed(0))
    out = scale_and_shift(pts, torch.Generator().manual_seed(0))
    shift = zero[:, :1]  # the zero cloud shows the shift alone
    assert shift.abs().max() <= 0.2 and shift.abs().max() > 0.15
    scale = (out - shift) / pts
    assert torch.allclose(scale, scale[:, :1].expand_as(scale), atol=1e-4)  # one per cloud/axis
    assert scale.min() >= 2 / 3 - 1e-4 and scale.max() <= 1.5 + 1e-4
    assert scale.max() - scale.min() > 0.5
    one = scale_and_shift(pts[0], torch.Generator().manual_seed(0))  # one [N, 3] cloud
    assert torch.equal(one, scale_and_shift(pts[:1], torch.Generator().manual_seed(0))[0])
