"""Regression tests for the defects found by checking the core against PEFT and AdapterHub
(issue 11: saving, modules_to_save, train/eval mode, merge, delete/rollback, overlap, types,
weight dtypes). PEFT-file cases are in ``methods/test_peft_interop.py``."""

from __future__ import annotations

import json

import pytest
import torch
from adapterlab.core import (
    BottleneckConfig,
    LoraConfig,
    add_adapter,
    delete_adapter,
    disable_adapters,
    get_config,
    list_adapters,
    load_adapter,
    load_config,
    merge_adapter,
    save_adapter,
    set_active,
)
from adapterlab.core.testing import build_backbone
from safetensors.torch import load_file, save_file
from torch import nn


def _out(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def _perturb(model: nn.Module, name: str, seed: int) -> None:
    """Give adapter ``name``'s tensors (its head copy included) random values."""
    from adapterlab.core import get_adapter_parameters

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in get_adapter_parameters(model, name):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


# 1. saving never deletes other files ---------------------------------------------------------
def test_save_adapter_keeps_other_files_in_the_folder(tmp_path) -> None:
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4))
    target = tmp_path / "run"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("keep me")
    (target / "sub" / "metrics.json").write_text("{}")
    save_adapter(model, target)
    save_adapter(model, target)  # and again over its own files
    assert (target / "notes.txt").read_text() == "keep me"
    assert (target / "sub" / "metrics.json").is_file()
    assert sorted(p.name for p in target.iterdir()) == [
        "adapter.safetensors",
        "adapter_config.json",
        "notes.txt",
        "sub",
    ]


# 2. modules_to_save: one copy per adapter ---------------------------------------------------
def test_modules_to_save_are_per_adapter_switched_saved_and_merged(tmp_path) -> None:
    model, x = build_backbone("roberta")
    base = _out(model, x)
    lora = dict(r=2, target_modules=["query", "value"], init_lora_weights=False)
    add_adapter(model, LoraConfig(modules_to_save=["head"], **lora), "a")
    _perturb(model, "a", 1)
    add_adapter(model, LoraConfig(modules_to_save=["head"], **lora), "b")
    _perturb(model, "b", 2)
    set_active(model, "a")
    out_a = _out(model, x)
    set_active(model, "b")
    out_b = _out(model, x)
    set_active(model, "a")
    torch.testing.assert_close(_out(model, x), out_a, rtol=0, atol=0)  # a -> b -> a
    assert not torch.allclose(out_a, out_b, atol=1e-3)
    with pytest.raises(ValueError, match="only one of them"):
        set_active(model, ["a", "b"])
    assert type(model.head) is nn.Linear  # the model keeps its own modules (values swap)
    with disable_adapters(model):
        torch.testing.assert_close(_out(model, x), base, rtol=0, atol=0)
    torch.testing.assert_close(_out(model, x), out_a, rtol=0, atol=0)
    save_adapter(model, tmp_path / "a", "a")
    fresh, _ = build_backbone("roberta")
    load_adapter(fresh, tmp_path / "a", "a")
    torch.testing.assert_close(_out(fresh, x), out_a, rtol=0, atol=1e-6)
    merge_adapter(fresh, "a")
    assert isinstance(fresh.head, nn.Linear)  # the adapter's head copy became the head
    torch.testing.assert_close(_out(fresh, x), out_a, rtol=0, atol=1e-5)


# 4. new modules follow the model's train/eval mode --------------------------------------------
@pytest.mark.parametrize("method", ["lora", "pfeiffer", "conformer"])
def test_new_modules_follow_eval_mode_on_add_and_load(method: str, tmp_path) -> None:
    model, x = build_backbone("roberta")
    model.eval()
    overrides = {"dropout": 0.5}
    if method == "conformer":
        overrides = {"dropout": 0.5, "bottleneck_dim": 4, "kernel_size": 3}
    add_adapter(model, get_config(method, **overrides))
    assert not any(m.training for m in model.modules())
    _perturb(model, "default", 3)
    torch.testing.assert_close(_out(model, x), _out(model, x), rtol=0, atol=0)
    save_adapter(model, tmp_path / "a")
    fresh, _ = build_backbone("roberta")
    fresh.eval()
    load_adapter(fresh, tmp_path / "a")
    assert not any(m.training for m in fresh.modules())
    model.train()
    assert all(m.training for m in model.modules())


# 6. merge validates first -------------------------------------------------------------------
def test_failed_merge_changes_nothing() -> None:
    model, x = build_backbone("roberta")
    base = _out(model, x)
    add_adapter(model, LoraConfig(target_modules=["query", "value"], init_lora_weights=False), "a")
    add_adapter(model, LoraConfig(target_modules=["value"], init_lora_weights=False), "b")
    set_active(model, ["a", "b"])
    before = _out(model, x)
    structure = [n for n, _ in model.named_modules()]
    with pytest.raises(ValueError, match="also carries adapters"):
        merge_adapter(model, "a")
    assert [n for n, _ in model.named_modules()] == structure
    assert list(list_adapters(model)) == ["a", "b"]
    torch.testing.assert_close(_out(model, x), before, rtol=0, atol=0)
    with disable_adapters(model):  # nothing was folded into the base weights
        torch.testing.assert_close(_out(model, x), base, rtol=0, atol=0)


# 7. delete_adapter, and failed loads roll back ------------------------------------------------
@pytest.mark.parametrize(
    "config",
    [
        get_config("pfeiffer", bottleneck_dim=4),
        get_config("parallel", bottleneck_dim=4),
        LoraConfig(target_modules=["query", "value"]),
        get_config("bitfit"),
        get_config("prompt", num_tokens=2),
        get_config("houlsby", bottleneck_dim=4, modules_to_save=["head"]),
        get_config("prefix", num_tokens=2),
        get_config("conformer", bottleneck_dim=4, kernel_size=3),
        get_config("mosa", bottleneck_dim=4),
        get_config("lowbit", bits=1, bottleneck_dim=4),
        get_config("mixda", num_domains=2),
        get_config("poly", target_modules=["query", "value"]),
    ],
    ids=[
        "pfeiffer",
        "parallel",
        "lora",
        "bitfit",
        "prompt",
        "houlsby+head",
        "prefix",
        "conformer",
        "mosa",
        "lowbit",
        "mixda",
        "poly",
    ],
)
def test_delete_adapter_restores_the_base_model(config, tmp_path) -> None:  # noqa: ANN001
    model, x = build_backbone("roberta")
    names = [n for n, _ in model.named_modules()]
    params = {n: p.detach().clone() for n, p in model.named_parameters()}
    base = _out(model, x)
    add_adapter(
        model, get_config("pfeiffer", bottleneck_dim=2, target_modules=["0.output.dense"]), "keep"
    )
    add_adapter(model, config, "gone")
    _perturb(model, "gone", 4)
    delete_adapter(model, "gone")
    assert list(list_adapters(model)) == ["keep"]
    delete_adapter(model, "keep")
    assert [n for n, _ in model.named_modules()] == names
    assert {n: p for n, p in model.named_parameters()}.keys() == params.keys()
    torch.testing.assert_close(_out(model, x), base, rtol=0, atol=0)
    with pytest.raises(ValueError, match="no adapter named"):
        delete_adapter(model, "gone")


def test_failed_load_rolls_back(tmp_path) -> None:
    model, _ = build_backbone("roberta")
    add_adapter(model, get_config("houlsby", bottleneck_dim=4, modules_to_save=["head"]))
    save_adapter(model, tmp_path / "a")
    tensors = load_file(str(tmp_path / "a" / "adapter.safetensors"))
    key = sorted(tensors)[0]
    tensors[key] = torch.zeros(3, 3)  # wrong shape: detected after injection
    save_file(tensors, str(tmp_path / "a" / "adapter.safetensors"))
    fresh, _ = build_backbone("roberta")
    names = [n for n, _ in fresh.named_modules()]
    with pytest.raises(ValueError, match="shape mismatches"):
        load_adapter(fresh, tmp_path / "a")
    assert list_adapters(fresh) == {}
    assert [n for n, _ in fresh.named_modules()] == names


# 8. overlapping targets and modules_to_save ---------------------------------------------------
def test_targets_inside_modules_to_save_are_refused_up_front() -> None:
    model, _ = build_backbone("roberta")
    names = [n for n, _ in model.named_modules()]
    with pytest.raises(ValueError, match="overlap at 'head'"):
        add_adapter(model, LoraConfig(target_modules=["head", "query"], modules_to_save=["head"]))
    assert list_adapters(model) == {}
    assert [n for n, _ in model.named_modules()] == names


# 11. wrong config types -----------------------------------------------------------------------
def test_wrong_field_types_name_the_field_and_type() -> None:
    with pytest.raises(ValueError, match=r"reduction_factor must be a float.*'sixteen'"):
        BottleneckConfig(reduction_factor="sixteen")
    with pytest.raises(ValueError, match=r"bottleneck_dim must be a int or None.*'eight'"):
        get_config("pfeiffer", bottleneck_dim="eight")
    with pytest.raises(ValueError, match=r"r must be a int"):
        LoraConfig(r=2.5)
    cfg = get_config("lora")
    cfg.alpha = "big"  # set after construction: caught when added
    model, _ = build_backbone("toy")
    with pytest.raises(ValueError, match="alpha must be a float"):
        add_adapter(model, cfg)


def test_config_files_that_are_lists_or_unknown_methods_name_the_file(tmp_path) -> None:
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps([{"method": "lora"}]))
    with pytest.raises(
        ValueError, match=r"adapter_config\.json.*JSON object.*'bottleneck'.*'lora'"
    ):
        load_config(path)
    path.write_text(json.dumps({"method": "loha", "config": {}}))
    with pytest.raises(ValueError, match=r"adapter_config\.json.*'loha'.*known methods.*'lora'"):
        load_config(path)
    path.write_text(json.dumps({"method": "lora", "config": {"r": "eight"}}))
    with pytest.raises(ValueError, match=r"adapter_config\.json.*LoraConfig\.r must be a int"):
        load_config(path)


# 12. adapter weights must be finite floats ----------------------------------------------------
def _saved(tmp_path) -> tuple[dict[str, torch.Tensor], str]:  # noqa: ANN001
    model, _ = build_backbone("toy")
    add_adapter(model, get_config("pfeiffer", bottleneck_dim=4))
    save_adapter(model, tmp_path / "a")
    path = str(tmp_path / "a" / "adapter.safetensors")
    return load_file(path), path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.to(torch.int64), "dtype torch.int64.*floating point"),
        (lambda t: t.clone().fill_(float("nan")), "NaN or infinite"),
        (lambda t: t.clone().fill_(float("inf")), "NaN or infinite"),
    ],
    ids=["int64", "nan", "inf"],
)
def test_non_float_or_non_finite_weights_are_rejected(change, message, tmp_path) -> None:  # noqa: ANN001
    tensors, path = _saved(tmp_path)
    key = sorted(tensors)[0]
    tensors[key] = change(tensors[key])
    save_file(tensors, path)
    fresh, _ = build_backbone("toy")
    with pytest.raises(ValueError, match=rf"adapter\.safetensors: tensor '{key}' .*{message}"):
        load_adapter(fresh, tmp_path / "a")
    assert list_adapters(fresh) == {}


def test_float64_weights_are_cast_to_the_model_dtype(tmp_path) -> None:
    tensors, path = _saved(tmp_path)
    tensors = {k: (v + 0.125).double() for k, v in tensors.items()}
    save_file(tensors, path)
    fresh, _ = build_backbone("toy")
    load_adapter(fresh, tmp_path / "a")
    from adapterlab.core import adapter_state_dict

    loaded = adapter_state_dict(fresh)
    for key, value in tensors.items():
        assert loaded[key].dtype == torch.float32
        torch.testing.assert_close(loaded[key], value.float(), rtol=0, atol=0)
