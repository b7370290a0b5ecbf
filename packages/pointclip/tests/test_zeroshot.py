"""Zero-shot classification: rigged text/feature setups, view weights, prompt ensembling."""

import pytest
import torch
import torch.nn.functional as F
from adapterlab.pointclip.models.zeroshot import (
    TEMPLATES,
    aggregate_view_logits,
    build_text_features,
    format_prompts,
    zero_shot_logits,
)


def test_rigged_features_predict_their_class():
    C, V, D = 4, 3, 8
    text = torch.eye(C, D)
    labels = torch.tensor([2, 0, 3, 1, 1])
    g = torch.Generator().manual_seed(0)
    feats = text[labels][:, None, :].repeat(1, V, 1) + 0.1 * torch.randn(5, V, D, generator=g)
    logits = zero_shot_logits(feats, text)
    assert torch.equal(logits.argmax(1), labels)


def test_view_weights_decide_between_conflicting_views():
    text = torch.eye(2, 4)
    # view 0 says class 0, view 1 says class 1 (slightly stronger)
    feats = torch.stack([text[0], 1.2 * text[1] + 0.3 * text[0]])[None]
    assert zero_shot_logits(feats, text).argmax(1).item() == 0  # cos: 1.0 vs 0.97
    assert zero_shot_logits(feats, text, view_weights=[0.1, 1.0]).argmax(1).item() == 1
    assert zero_shot_logits(feats, text, view_weights=[1.0, 0.1]).argmax(1).item() == 0


def test_logits_formula():
    g = torch.Generator().manual_seed(1)
    f, t = torch.randn(3, 5, 6, generator=g), torch.randn(4, 6, generator=g)
    w = torch.rand(5, generator=g)
    expected = 100 * torch.einsum("bvd,cd,v->bc", F.normalize(f, dim=-1), F.normalize(t, dim=-1), w)
    assert torch.allclose(zero_shot_logits(f, t, w), expected, atol=1e-4)


def test_aggregate_checks_weight_count():
    with pytest.raises(ValueError, match="one per view"):
        aggregate_view_logits(torch.randn(2, 3, 4), [1.0, 2.0])


class _FakeClip:
    """Text encoder whose feature encodes the (class, template) of each prompt."""

    def __init__(self, classes, templates):
        self.table = {}
        for t, tpl in enumerate(templates):
            for c, prompt in enumerate(format_prompts(classes, tpl)):
                v = torch.zeros(8)
                v[c], v[4 + t] = 1.0, 1.0
                self.table[prompt] = F.normalize(v, dim=0)

    def encode_text(self, texts):
        return torch.stack([self.table[s] for s in texts])


def test_prompt_ensembling_averages_templates():
    classes = ["chair", "night_stand"]
    templates = ["a {}.", "b {}!"]
    fake = _FakeClip(classes, templates)
    single = build_text_features(fake, classes, templates, ensemble=False)
    both = build_text_features(fake, classes, templates, ensemble=True)
    assert torch.allclose(
        single, F.normalize(fake.encode_text(format_prompts(classes, "a {}.")), dim=-1)
    )
    e0 = fake.encode_text(format_prompts(classes, "a {}."))
    e1 = fake.encode_text(format_prompts(classes, "b {}!"))
    assert torch.allclose(both, F.normalize(e0 + e1, dim=-1), atol=1e-6)
    assert format_prompts(["night_stand"], "image of a {}.") == ["image of a night stand."]


def test_template_errors():
    with pytest.raises(ValueError, match="placeholder"):
        format_prompts(["a"], "no slot")
    with pytest.raises(ValueError, match="Unknown template set"):
        build_text_features(None, ["a"], "nope")
    assert "clip2point" in TEMPLATES and TEMPLATES["clip2point"] == [
        "image of a {}"
    ]  # no period, as the original
