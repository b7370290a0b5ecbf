"""Configs, targeting errors, several adapters, masks and save/load failure modes."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from adapterlab.core import (
    BottleneckConfig,
    LoraConfig,
    add_adapter,
    config_from_dict,
    disable_adapters,
    get_adapter_parameters,
    get_config,
    library_version,
    list_adapters,
    load_adapter,
    load_config,
    save_adapter,
    set_active,
    trainable_summary,
)
from adapterlab.core.testing import build_backbone
from torch import nn


def test_config_json_round_trip_carries_method_and_version(tmp_path) -> None:
    cfg = get_config("houlsby", reduction_factor=4, modules_to_save=["head"])
    cfg.to_json(tmp_path / "c.json")
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["method"] == "bottleneck"
    assert data["adapterlab_version"] == library_version()
    back = load_config(tmp_path / "c.json")
    assert back == cfg
    assert isinstance(back.locations, tuple)


def test_unknown_keys_from_newer_version_are_dropped_with_warning() -> None:
    data = get_config("lora", r=4).to_dict()
    data["config"]["shiny_new_option"] = 3
    with pytest.warns(UserWarning, match="shiny_new_option"):
        cfg = config_from_dict(data)
    assert cfg == LoraConfig(r=4)


@pytest.mark.parametrize("bad", ["nope", "pfeifer"])
def test_unknown_method_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="unknown adapter preset"):
        get_config(bad)
    with pytest.raises(ValueError, match="unknown adapter method"):
        config_from_dict({"method": bad, "config": {}})


def test_invalid_field_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="placement"):
        get_config("pfeiffer", placement="diagonal")
    with pytest.raises(ValueError, match="residual"):
        get_config("pfeiffer", residual="False")  # a string is not a bool (PETL-AST's bug)
    with pytest.raises(ValueError, match="no field"):
        get_config("lora", rank=4)


def test_unmatched_targets_list_candidates() -> None:
    model, _ = build_backbone("toy")
    with pytest.raises(ValueError, match=r"matched no module\. Candidates: .*mlp"):
        add_adapter(model, get_config("pfeiffer", target_modules=["ffn_out"]))


def test_partial_match_names_the_unmatched_entries() -> None:
    model, _ = build_backbone("toy")
    with pytest.raises(ValueError, match=r"\['nonexistent'\] matched no module"):
        add_adapter(model, get_config("lora", target_modules=["attn", "nonexistent"]))
    assert list_adapters(model) == {}  # nothing was injected
    assert not any("lora_" in n for n, _ in model.named_modules())


def test_target_forms_exact_suffix_regex() -> None:
    model, _ = build_backbone("toy")
    add_adapter(
        model, BottleneckConfig(target_modules=["backbone.transformer.resblocks.0.mlp"]), "a"
    )
    add_adapter(model, BottleneckConfig(target_modules=["resblocks.1.mlp"]), "b")
    add_adapter(model, BottleneckConfig(target_modules=r".*resblocks\.\d\.mlp"), "c")
    wrappers = dict(model.named_modules())
    assert set(wrappers["backbone.transformer.resblocks.0.mlp"].adapters) == {"a", "c"}
    assert set(wrappers["backbone.transformer.resblocks.1.mlp"].adapters) == {"b", "c"}


def test_duplicate_name_is_an_error() -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer"), "task")
    with pytest.raises(ValueError, match="already exists"):
        add_adapter(model, get_config("lora"), "task")


def test_trainable_summary_counts() -> None:
    model, _ = build_backbone("toy")
    total = sum(p.numel() for p in model.parameters())
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4, modules_to_save=["head"]))
    s = trainable_summary(model)
    per_block = 16 * 4 + 4 + 4 * 16 + 16
    head = 16 * 3 + 3
    assert s.trainable == 2 * per_block + head
    assert s.total == total + 2 * per_block  # an adapter's head values are swapped in, not added
    assert s.percent == pytest.approx(100 * s.trainable / s.total)
    assert "trainable%" in str(s)


def _perturb(model: nn.Module, name: str) -> None:
    with torch.no_grad():
        for n, p in model.named_parameters():
            if f".{name}." in n or n.endswith(f".{name}"):
                p.add_(torch.randn_like(p) * 0.1)


def test_several_adapters_set_active_stack_and_parallel() -> None:
    model, x = build_backbone("toy")
    with torch.no_grad():
        base = model(x)
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4), "a")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4), "b")
    _perturb(model, "a")
    _perturb(model, "b")
    mlp = model.backbone.transformer.resblocks[0].mlp
    h = torch.randn(2, 3, 16)
    y = mlp.base_layer(h)
    a, b = mlp.adapters["a"], mlp.adapters["b"]
    set_active(model, ["a", "b"], composition="stack")
    torch.testing.assert_close(mlp(h), b(h, a(h, y)))
    set_active(model, ["a", "b"], composition="parallel")
    torch.testing.assert_close(mlp(h), y + (a(h, y) - y) + (b(h, y) - y))
    set_active(model, "a")
    torch.testing.assert_close(mlp(h), a(h, y))
    with torch.no_grad():
        out_a = model(x)
        with disable_adapters(model):
            torch.testing.assert_close(model(x), base, rtol=0, atol=0)
        torch.testing.assert_close(model(x), out_a, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no adapter"):
        set_active(model, "c")


def test_set_active_does_not_change_trainability() -> None:
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config("lora"), "a")
    add_adapter(model, get_config("lora"), "b")
    flags = [p.requires_grad for p in model.parameters()]
    set_active(model, "a")
    with disable_adapters(model):
        pass
    assert flags == [p.requires_grad for p in model.parameters()]


def test_parallel_adapter_reads_the_sublayer_input_bert() -> None:
    """He et al.: the FFN adapter reads the FFN input (BERT: intermediate's input)."""
    model, x = build_backbone("roberta")
    add_adapter(model, get_config("parallel", bottleneck_dim=4))
    layer = model.backbone.encoder.layer[0]
    _perturb(model, "default")
    seen = {}
    layer.intermediate.register_forward_hook(lambda m, a, o: seen.update(x=a[0]) and None)
    layer.output.dense.base_layer.register_forward_hook(lambda m, a, o: seen.update(y=o) and None)
    outs = {}
    layer.output.dense.register_forward_hook(lambda m, a, o: outs.update(out=o) and None)
    with torch.no_grad():
        model(x)
    adapter = layer.output.dense.adapters["default"]
    expected = seen["y"] + adapter.adapt(seen["x"])
    torch.testing.assert_close(outs["out"], expected)


@pytest.mark.parametrize("method", ["prompt", "prompt_deep", "prefix"])
def test_token_methods_respect_padding_masks(method: str) -> None:
    """A padded sequence gives the same features as the same sequence alone."""
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config(method, num_tokens=2))
    _perturb(model, "default")
    backbone = model.backbone
    ids = torch.randint(3, 50, (1, 5))
    padded = torch.cat([ids, torch.ones(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    with torch.no_grad():
        alone = backbone(ids).last_hidden_state
        batch = backbone(padded, attention_mask=mask).last_hidden_state[:, :5]
    torch.testing.assert_close(batch, alone, rtol=1e-3, atol=1e-4)


def test_prompt_replace_drops_the_distillation_token_for_ast() -> None:
    model, x = build_backbone("ast")
    ast = model.backbone
    with torch.no_grad():
        n_tokens = ast(x).last_hidden_state.shape[1]
    add_adapter(model, get_config("prompt_deep", num_tokens=4, replace=1))
    with torch.no_grad():
        assert ast(x).last_hidden_state.shape[1] == n_tokens - 1
    first = ast.layers[0]
    captured = {}
    first.base_layer.register_forward_pre_hook(lambda m, a: captured.update(h=a[0]) and None)
    with torch.no_grad():
        ast(x)
    assert captured["h"].shape[1] == n_tokens - 1 + 4
    torch.testing.assert_close(captured["h"][0, 1:5], first.adapters["default"].prompts)


def test_conformer_uses_its_layer_norm() -> None:
    """PETL-AST computes the LN and throws it away; ours feeds it to the first conv."""
    from adapterlab.core.tuners.conformer import ConformerAdapter

    torch.manual_seed(0)
    adapter = ConformerAdapter(8, 4, kernel_size=3).eval()
    nn.init.normal_(adapter.pointwise_out.weight)
    h = torch.randn(2, 5, 8)
    z = adapter.norm(h).transpose(1, 2)
    z = adapter.act(adapter.batch_norm(adapter.depthwise(adapter.glu(adapter.pointwise_in(z)))))
    expected = adapter.pointwise_out(z).transpose(1, 2)
    torch.testing.assert_close(adapter.adapt(h), expected)
    # a scaled/shifted input gives the same branch output only because the LN is used
    torch.testing.assert_close(adapter.adapt(3 * h + 1), expected, rtol=1e-4, atol=1e-4)


def test_load_onto_wrong_architecture_is_a_clear_error(tmp_path) -> None:
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config("lora"))
    save_adapter(model, tmp_path / "lora")
    other, _ = build_backbone("ast")
    # AST also has q/v projections, so the default targets resolve but the keys do not fit
    with pytest.raises(ValueError, match=r"does not fit .*missing keys .*q_proj.*unexpected keys"):
        load_adapter(other, tmp_path / "lora")
    toy, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", target_modules=["output.dense"]), "ffn")
    save_adapter(model, tmp_path / "ffn", "ffn")
    with pytest.raises(ValueError, match=r"cannot load adapter .*matched no module"):
        load_adapter(toy, tmp_path / "ffn", "ffn")


def test_load_with_wrong_shapes_names_the_keys(tmp_path) -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4))
    save_adapter(model, tmp_path / "a")
    other, _ = build_backbone("toy")
    add_adapter(other, get_config("pfeiffer", bottleneck_dim=6))
    with pytest.raises(ValueError, match=r"shape mismatches .*mlp\.bottleneck\.down\.weight"):
        load_adapter(other, tmp_path / "a")


def test_missing_and_unexpected_keys_are_named(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4))
    save_adapter(model, tmp_path / "a")
    tensors = load_file(str(tmp_path / "a" / "adapter.safetensors"))
    dropped = sorted(tensors)[0]
    tensors.pop(dropped)
    tensors["stray.weight"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "a" / "adapter.safetensors"))
    fresh, _ = build_backbone("toy")
    with pytest.raises(ValueError, match="missing keys") as err:
        load_adapter(fresh, tmp_path / "a")
    assert dropped in str(err.value) and "stray.weight" in str(err.value)


def test_corrupt_safetensors_is_a_clear_error(tmp_path) -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer"))
    save_adapter(model, tmp_path / "a")
    path = tmp_path / "a" / "adapter.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"adapter\.safetensors is not a readable safetensors"):
        load_adapter(build_backbone("toy")[0], tmp_path / "a")
    with pytest.raises(ValueError, match="does not exist"):
        load_adapter(build_backbone("toy")[0], tmp_path / "missing")


def test_config_of_another_method_is_rejected(tmp_path) -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer"))
    save_adapter(model, tmp_path / "a")
    other, _ = build_backbone("toy")
    add_adapter(other, get_config("lora"))
    with pytest.raises(ValueError, match="holds a 'bottleneck' adapter"):
        load_adapter(other, tmp_path / "a")


def test_save_is_atomic_and_keys_do_not_depend_on_the_name(tmp_path, monkeypatch) -> None:
    from safetensors.torch import load_file

    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer"), "alpha")
    add_adapter(model, get_config("pfeiffer"), "beta")
    save_adapter(model, tmp_path / "alpha", "alpha")
    save_adapter(model, tmp_path / "beta", "beta")
    keys_a = set(load_file(str(tmp_path / "alpha" / "adapter.safetensors")))
    keys_b = set(load_file(str(tmp_path / "beta" / "adapter.safetensors")))
    assert keys_a == keys_b and not any("alpha" in k or "beta" in k for k in keys_a)

    import adapterlab.core.io as io

    def boom(*args, **kwargs):
        raise OSError("disk full")

    before = sorted(p.name for p in tmp_path.iterdir())
    old = (tmp_path / "alpha" / "adapter.safetensors").read_bytes()
    monkeypatch.setattr(io, "save", boom)
    with pytest.raises(OSError):
        save_adapter(model, tmp_path / "alpha", "alpha")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp file left
    assert sorted(p.name for p in (tmp_path / "alpha").iterdir()) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    assert (tmp_path / "alpha" / "adapter.safetensors").read_bytes() == old  # old copy intact


def test_warnings_free_basic_flow(tmp_path) -> None:
    model, x = build_backbone("ast")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        add_adapter(model, get_config("conformer", bottleneck_dim=4, kernel_size=3))
        save_adapter(model, tmp_path / "c")
        load_adapter(build_backbone("ast")[0], tmp_path / "c")


@pytest.mark.parametrize("method", ["pfeiffer", "conformer", "lora"])
def test_adapters_run_on_a_low_precision_base(method: str) -> None:
    """Adapter weights stay float32 on a bf16 base; the output keeps the base dtype."""
    model, x = build_backbone("toy")
    model.to(torch.bfloat16)
    add_adapter(model, get_config(method))
    out = model(x.to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None for p in get_adapter_parameters(model))
