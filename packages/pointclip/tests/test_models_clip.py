"""CLIP loading through open_clip: tiny preset, local checkpoints, offline errors; encoder files."""

import open_clip
import pytest
import torch
from adapterlab.pointclip.models.clip import PretrainedWeightsError, load_clip
from adapterlab.pointclip.models.encoders import load_encoder_weights, save_encoder_weights
from safetensors.torch import save_file


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return load_clip("tiny", "none", device="cpu")


def test_tiny_preset_shapes(tiny):
    assert tiny.image_size == 64 and tiny.embed_dim == 64 and tiny.pretrained == "none"
    out = tiny.visual(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 64)
    text = tiny.encode_text(["image of a chair.", "image of a table."])
    assert text.shape == (2, 64)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert not torch.allclose(text[0], text[1])


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown CLIP model 'ViT-Nope'"):
        load_clip("ViT-Nope", "none")


def test_offline_tag_suggests_alternatives(monkeypatch):
    def offline(*args, **kwargs):
        raise RuntimeError("Name or service not known")

    monkeypatch.setattr(open_clip.factory, "download_pretrained", offline)
    with pytest.raises(PretrainedWeightsError) as info:
        load_clip("ViT-B-32", "openai", device="cpu")
    msg = str(info.value)
    assert "--pretrained none" in msg and "local" in msg and "ViT-B-32" in msg
    assert "Name or service not known" in msg


def test_missing_local_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(PretrainedWeightsError, match="nope.safetensors.*does not exist"):
        load_clip("tiny", str(path))
    with pytest.raises(PretrainedWeightsError, match="--pretrained none"):
        load_clip("tiny", "not-a-tag")


def test_local_checkpoint_loads_exact_weights(tiny, tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(path))
    again = load_clip("tiny", str(path), device="cpu")
    assert again.pretrained == str(path)
    for (k, a), (_, b) in zip(tiny.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), k


def test_encoder_roundtrip_and_original_prefixes(tiny, tmp_path):
    enc = tiny.copy_visual()
    with torch.no_grad():
        enc.proj.add_(1.0)
    path = save_encoder_weights(enc, tmp_path / "enc.safetensors")
    fresh = load_encoder_weights(tiny.copy_visual(), path)
    assert torch.equal(fresh.proj, enc.proj)
    # the original CLIP2Point checkpoints: {"point_model.*", "image_model.*"} in a torch file
    state = {f"module.point_model.{k}": v for k, v in enc.state_dict().items()}
    state.update({f"module.image_model.{k}": v for k, v in tiny.visual.state_dict().items()})
    torch.save(state, tmp_path / "best_eval.pth")
    fresh = load_encoder_weights(tiny.copy_visual(), tmp_path / "best_eval.pth")
    assert torch.equal(fresh.proj, enc.proj)


def test_encoder_mismatch_is_reported(tiny, tmp_path):
    save_file({"proj": torch.zeros(3, 3)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="bad.safetensors.*missing.*shape mismatches"):
        load_encoder_weights(tiny.copy_visual(), tmp_path / "bad.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="junk.safetensors"):
        load_encoder_weights(tiny.copy_visual(), tmp_path / "junk.safetensors")


def test_openai_weights_get_quick_gelu(monkeypatch, tmp_path):
    """open_clip 3.x builds ViT-B-32 with GELU even for the openai tag; OpenAI weights need
    QuickGELU. The model is built for the tag without downloading (weights skipped)."""
    from adapterlab.pointclip.models.clip import needs_quick_gelu

    real = open_clip.create_model

    def no_download(name, pretrained=None, **kwargs):
        return real(name, pretrained=None, **kwargs)

    monkeypatch.setattr(open_clip, "create_model", no_download)
    clip = load_clip("ViT-B-32", "openai", device="cpu")
    act = clip.visual.transformer.resblocks[0].mlp.gelu
    assert type(act).__name__ == "QuickGELU"
    # local files: by name, or by OpenAI's own key layout
    named = tmp_path / "vit_b_32_openai.safetensors"
    save_file({"x": torch.zeros(1)}, str(named))
    assert needs_quick_gelu("ViT-B-32", str(named))
    plain = tmp_path / "weights.pt"
    torch.save({"input_resolution": torch.tensor(224), "x": torch.zeros(1)}, plain)
    assert needs_quick_gelu("ViT-B-32", str(plain))
    other = tmp_path / "laion.safetensors"
    save_file({"x": torch.zeros(1)}, str(other))
    assert not needs_quick_gelu("ViT-B-32", str(other))
    assert not needs_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")
    assert not needs_quick_gelu("ViT-B-32", "none")


def test_original_clip2point_checkpoint_layout_loads(tmp_path):
    """CLIP2Point's pre-training saves the DataParallel state dict of the whole model: both
    encoders, the loss weight and the view selector's buffers. Only point_model.* is loaded."""
    torch.manual_seed(0)
    clip = load_clip("tiny", "none", device="cpu")
    depth = clip.copy_visual()
    with torch.no_grad():
        for p in depth.parameters():
            p.add_(0.5)
    state = {f"module.point_model.{k}": v for k, v in depth.state_dict().items()}
    state.update({f"module.image_model.{k}": v for k, v in clip.visual.state_dict().items()})
    state["module.weights"] = torch.ones(())
    state["module.selector.elev"] = torch.zeros(10)
    state["module.selector.azim"] = torch.zeros(10)
    path = tmp_path / "best_test.pth"
    torch.save(state, path)
    loaded = load_encoder_weights(clip.copy_visual(), path)
    for k, v in depth.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_public_api_is_exported_from_the_package():
    import adapterlab.pointclip as pc

    for name in pc.__all__:
        assert getattr(pc, name) is not None, name
    assert pc.preset_pretrain_config("ViT-B-32", "openai").lr == 1e-5


def test_pickled_checkpoint_is_refused_in_one_line(tmp_path):
    import argparse

    path = tmp_path / "evil.pth"
    torch.save({"x": argparse.Namespace(a=1)}, path)  # any non-tensor Python object
    clip = load_clip("tiny", "none", device="cpu")
    with pytest.raises(ValueError) as info:
        load_encoder_weights(clip.copy_visual(), path)
    msg = str(info.value)
    assert "evil.pth" in msg and "refusing to unpickle" in msg and "\n" not in msg
