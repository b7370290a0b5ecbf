"""BLIP loading, the VQA-from-captioner initialisation and where every method goes."""

from __future__ import annotations

import pytest
import torch
from adapterlab.core import p_adapter_modules, trainable_summary
from adapterlab.vl.config import RunConfig
from adapterlab.vl.methods import METHODS, apply_method
from adapterlab.vl.models import ModelLoadError, load_blip, tiny_backbone, vqa_from_captioner

TEXTS = ["a red circle left of a blue square", "what color is the circle?", "red", "2"]


@pytest.fixture(scope="module")
def captioner(tmp_path_factory):
    directory = tmp_path_factory.mktemp("blip")
    bb = tiny_backbone("caption", TEXTS, directory / "tok", image_size=16)
    bb.save(directory / "ckpt")
    return directory / "ckpt"


def test_round_trip_and_vqa_initialisation(captioner) -> None:
    cap = load_blip("caption", str(captioner))
    assert cap.tokenizer.tokenize("What color is the circle?") == [
        "what", "color", "is", "the", "circle", "?",
    ]  # fmt: skip
    vqa = vqa_from_captioner(cap)
    enc, dec = vqa.model.text_encoder.state_dict(), cap.model.text_decoder.bert.state_dict()
    assert all(torch.equal(enc[k], dec[k]) for k in dec)
    assert torch.equal(
        vqa.model.vision_model.embeddings.patch_embedding.weight,
        cap.model.vision_model.embeddings.patch_embedding.weight,
    )


def test_offline_error_names_the_fix(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="huggingface-cli download Salesforce/blip-vqa-base"):
        load_blip("vqa")


def _batch(bb, n=3):
    g = torch.Generator().manual_seed(0)
    q = bb.tokenizer(["what color is the circle?"] * n, return_tensors="pt")
    a = torch.tensor([[bb.bos_id, bb.tokenizer.convert_tokens_to_ids("red"), bb.sep_id]] * n)
    return dict(
        input_ids=q["input_ids"],
        attention_mask=q["attention_mask"],
        pixel_values=torch.randn(n, 3, 16, 16, generator=g),
        decoder_input_ids=a,
        labels=a,
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_placement_freezes_the_image_encoder(captioner, method: str) -> None:
    bb = vqa_from_captioner(load_blip("caption", str(captioner)))
    batch = _batch(bb)
    with torch.no_grad():
        base = bb.model(**batch).loss
    apply_method(bb.model, method, "vqa")
    trainable = [n for n, p in bb.model.named_parameters() if p.requires_grad]
    assert trainable and not [n for n in trainable if n.startswith("vision_model")]
    assert 0 < trainable_summary(bb.model).percent < 100
    if method.startswith("p_adapter"):
        branches = p_adapter_modules(bb.model)
        # self- and cross-attention of every layer of the question encoder and answer decoder
        assert len(branches) == 8
        assert sum("crossattention" in k for k in branches) == 4
        ffn = [n for n in trainable if ".output.dense.adapters" in n and "attention" not in n]
        assert ffn  # the plain bottleneck after each FFN
    if method != "prefix":  # prefixes start random (not an identity), everything else is one
        with torch.no_grad():
            torch.testing.assert_close(bb.model(**batch).loss, base, rtol=0, atol=1e-5)
    else:  # BLIP's hand-written attention must really see the prefixes (it once ignored them)
        bb.model(**batch).loss.backward()
        grads = [p.grad for p in bb.model.parameters() if p.requires_grad]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_trainable_share_of_the_released_p_adapter_on_blip_base() -> None:
    """BLIP-base captioning (ViT-B/16 + BERT-base decoder, built on the meta device: no
    weights) with the release's p-adapter at reduction 8 (768 -> 96): per text layer two
    attention branches (down, gate, up, p, mu) and one FFN adapter."""
    from adapterlab.core import trainable_summary
    from transformers import BlipConfig, BlipForConditionalGeneration

    with torch.device("meta"):
        model = BlipForConditionalGeneration(BlipConfig())
        base = sum(p.numel() for p in model.parameters())
        apply_method(model, "p_adapter_code", "caption", reduction=8.0)
    summary = trainable_summary(model)
    branch = 2 * (768 * 96 + 96) + (96 * 768 + 768) + 2
    ffn = (768 * 96 + 96) + (96 * 768 + 768)
    assert summary.trainable == 12 * (2 * branch + ffn) == 7_111_344
    assert summary.total == base + summary.trainable
    assert round(summary.percent, 2) == 3.08


def test_cross_attention_focus_equals_area_under_uniform_attention(prepared, synth_root) -> None:
    """With every cross-attention key zeroed the attention is uniform over the image tokens, so
    each patch group's share of the mass must equal its share of the tokens."""
    from adapterlab.vl.attention_focus import cross_attention_focus
    from adapterlab.vl.train import prepare_task

    _, prep = prepared
    backbone = prepare_task(RunConfig(progress=False), prep, "vqa").backbone()
    for layer in backbone.model.text_encoder.encoder.layer:
        torch.nn.init.zeros_(layer.crossattention.self.key.weight)
        torch.nn.init.zeros_(layer.crossattention.self.key.bias)
    focus = cross_attention_focus(backbone, synth_root, max_questions=40)
    assert focus["questions"] == 40
    assert sum(focus["mass_percent"].values()) == pytest.approx(100, abs=1e-3)
    for group in ("target", "distractor", "other"):
        assert focus["mass_percent"][group] == pytest.approx(focus["area_percent"][group], abs=1e-3)
    assert focus["area_percent"]["distractor"] > 10  # the default scenes are crowded
