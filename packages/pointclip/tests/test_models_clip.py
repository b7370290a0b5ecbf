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
    state = {k: v.contiguous() for k, v in tiny.model.state_dict().items()}
    save_file(state, str(path), metadata={"quick_gelu": "false"})
    again = load_clip("tiny", str(path), device="cpu")
    assert again.pretrained == str(path)
    # the record of what was loaded: the file, its hash, and the hash of the weights in use
    import hashlib

    w = again.weights
    assert (w["source"], w["file"]) == ("local file", str(path.resolve()))
    assert w["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert w["state_sha256"] == tiny.weights["state_sha256"] and w["quick_gelu"] is False
    import copy

    from adapterlab.pointclip.models.clip import state_sha256

    changed = copy.deepcopy(again.model)
    with torch.no_grad():
        changed.logit_scale.add_(1.0)
    assert state_sha256(changed) != w["state_sha256"] == state_sha256(again.model)
    # a depth encoder remembers the activation it was trained with
    from adapterlab.pointclip.models.clip2point import load_depth_encoder

    enc = save_encoder_weights(tiny.copy_visual(), tmp_path / "enc.safetensors", tiny.weights)
    assert load_depth_encoder(tiny, enc) is not None
    quick = dict(tiny.weights, quick_gelu=True)
    save_encoder_weights(tiny.copy_visual(), tmp_path / "enc_q.safetensors", quick)
    with pytest.raises(ValueError, match="quick_gelu=true.*--quick_gelu true"):
        load_depth_encoder(tiny, tmp_path / "enc_q.safetensors")
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


def test_quick_gelu_is_decided_from_weights_or_metadata_never_the_name(monkeypatch, tmp_path):
    """open_clip 3.x builds ViT-B-32 with GELU even for the openai tag; OpenAI weights need
    QuickGELU. A tag says it, OpenAI's own layout says it, explicit metadata says it; a file in
    open_clip's layout without metadata cannot tell (whatever its name), so --quick_gelu is
    required, and a flag that contradicts the evidence is warned about."""
    from adapterlab.pointclip.models.clip import decide_quick_gelu, needs_quick_gelu

    real = open_clip.create_model

    def no_download(name, pretrained=None, **kwargs):
        return real(name, pretrained=None, **kwargs)

    monkeypatch.setattr(open_clip, "create_model", no_download)
    clip = load_clip("ViT-B-32", "openai", device="cpu")
    act = clip.visual.transformer.resblocks[0].mlp.gelu
    assert type(act).__name__ == "QuickGELU"
    assert clip.weights["quick_gelu"] is True and "openai" in clip.weights["quick_gelu_from"]
    # OpenAI weights saved in open_clip's layout under a generic name: cannot be told
    generic = tmp_path / "model.safetensors"
    save_file({"x": torch.zeros(1)}, str(generic))
    with pytest.raises(PretrainedWeightsError, match="model.safetensors.*--quick_gelu true"):
        needs_quick_gelu("ViT-B-32", str(generic))
    named = tmp_path / "vit_b_32_openai.safetensors"  # a name is no evidence, only a hint
    save_file({"x": torch.zeros(1)}, str(named))
    with pytest.raises(PretrainedWeightsError, match="name suggests OpenAI"):
        needs_quick_gelu("ViT-B-32", str(named))
    assert needs_quick_gelu("ViT-B-32", str(generic), explicit=True)
    assert not needs_quick_gelu("ViT-B-32", str(generic), explicit=False)
    # explicit metadata: safetensors metadata, or open_clip_config.json beside the file
    tagged = tmp_path / "tagged.safetensors"
    save_file({"x": torch.zeros(1)}, str(tagged), metadata={"quick_gelu": "true"})
    assert decide_quick_gelu("ViT-B-32", str(tagged)) == (
        True,
        "the file's safetensors metadata 'quick_gelu'",
    )
    hub = tmp_path / "hub"
    hub.mkdir()
    save_file({"x": torch.zeros(1)}, str(hub / "open_clip_model.safetensors"))
    (hub / "open_clip_config.json").write_text('{"model_cfg": {"quick_gelu": true}}')
    assert needs_quick_gelu("ViT-B-32", str(hub / "open_clip_model.safetensors"))
    (hub / "open_clip_config.json").write_text('{"model_cfg": {"embed_dim": 512}}')
    assert not needs_quick_gelu("ViT-B-32", str(hub / "open_clip_model.safetensors"))
    # the weights themselves: OpenAI's own checkpoint layout
    plain = tmp_path / "weights.pt"
    torch.save({"input_resolution": torch.tensor(224), "x": torch.zeros(1)}, plain)
    assert needs_quick_gelu("ViT-B-32", str(plain))
    assert not needs_quick_gelu("ViT-B-32", "laion2b_s34b_b79k")
    assert not needs_quick_gelu("ViT-B-32", "none")
    with pytest.warns(UserWarning, match="contradicts"):
        assert not needs_quick_gelu("ViT-B-32", str(tagged), explicit=False)
    # through load_clip: the flag builds the activation, the choice is recorded
    tiny_file = tmp_path / "tiny_generic.safetensors"
    torch.manual_seed(0)
    tiny = load_clip("tiny", "none", device="cpu")
    save_file({k: v.contiguous() for k, v in tiny.model.state_dict().items()}, str(tiny_file))
    with pytest.raises(PretrainedWeightsError, match="--quick_gelu"):
        load_clip("tiny", str(tiny_file), device="cpu")
    quick = load_clip("tiny", str(tiny_file), device="cpu", quick_gelu=True)
    assert type(quick.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    assert (
        quick.weights["quick_gelu"] is True and quick.weights["quick_gelu_from"] == "--quick_gelu"
    )


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
