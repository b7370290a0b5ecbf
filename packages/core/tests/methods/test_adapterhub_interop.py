"""AdapterHub (``adapters`` 1.3) bottleneck adapters: ours equal theirs, both ways.

The fixture in ``tests/fixtures/adapterhub`` was written by AdapterHub itself
(``bench/make_adapterhub_fixture.py``, run in AdapterHub's isolated environment): a tiny RoBERTa's
base weights, a ``seq_bn`` and a ``double_seq_bn`` adapter saved with ``model.save_adapter``, the
input ids and AdapterHub's ``last_hidden_state`` with each adapter active.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from adapterlab.core import (
    add_adapter,
    export_adapterhub,
    get_config,
    list_adapters,
    load_adapterhub_adapter,
    set_active,
)
from safetensors.torch import load_file
from torch import nn
from transformers import RobertaConfig, RobertaModel

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adapterhub"


def _reference() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "reference.safetensors"))


def _base() -> RobertaModel:
    ref = _reference()
    meta = json.loads((FIXTURE / "reference.json").read_text())
    model = RobertaModel(RobertaConfig(**meta["config"]), add_pooling_layer=False).eval()
    base = {k.removeprefix("base."): v for k, v in ref.items() if k.startswith("base.")}
    model.load_state_dict(base)
    return model


def _out(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=_reference()["input_ids"]).last_hidden_state


def test_base_weights_reproduce_adapterhubs_plain_output() -> None:
    torch.testing.assert_close(_out(_base()), _reference()["output.none"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["seq_bn", "double_seq_bn"])
def test_adapter_saved_by_adapterhub_reproduces_its_outputs(kind: str) -> None:
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / kind, "hub")
    ref = _reference()
    assert (ref[f"output.{kind}"] - ref["output.none"]).abs().max() > 0.1  # the adapter matters
    torch.testing.assert_close(_out(model), ref[f"output.{kind}"], atol=2e-5, rtol=0)
    config = list_adapters(model)["hub"]
    assert config.original_ln_before is (kind == "seq_bn")


def test_pfeiffer_preset_is_seq_bn_given_the_same_weights() -> None:
    """Our own ``pfeiffer`` adapter, filled with AdapterHub's seq_bn weights, gives seq_bn's
    outputs (the old placement, reading the raw dense output, was 2.27 off)."""
    model = _base()
    add_adapter(model, get_config("pfeiffer", reduction_factor=16), "ours")
    hub = load_file(str(FIXTURE / "seq_bn" / "adapter.safetensors"))
    names = {"adapter_down.0": "down", "adapter_up": "up"}
    with torch.no_grad():
        for key, tensor in hub.items():
            block, rest = key.split(".adapters.seq_bn.")
            part, leaf = rest.rsplit(".", 1)
            layer = model.get_submodule(f"{block}.LayerNorm").adapters["ours"]
            getattr(layer, names[part]).get_parameter(leaf).copy_(tensor)
    torch.testing.assert_close(_out(model), _reference()["output.seq_bn"], atol=2e-5, rtol=0)


@pytest.mark.parametrize("kind", ["seq_bn", "double_seq_bn"])
def test_export_writes_adapterhubs_layout_and_round_trips(kind: str, tmp_path) -> None:
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / kind, kind)
    export_adapterhub(model, tmp_path / "out", kind)
    ours = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    theirs = json.loads((FIXTURE / kind / "adapter_config.json").read_text())
    assert ours["config"] == theirs["config"]
    for field in ("hidden_size", "model_class", "model_type", "name"):
        assert ours[field] == theirs[field]
    ours_w = load_file(str(tmp_path / "out" / "adapter.safetensors"))
    theirs_w = load_file(str(FIXTURE / kind / "adapter.safetensors"))
    assert set(ours_w) == set(theirs_w)
    for key in theirs_w:
        torch.testing.assert_close(ours_w[key], theirs_w[key], atol=0, rtol=0)
    fresh = _base()
    load_adapterhub_adapter(fresh, tmp_path / "out", "again")
    torch.testing.assert_close(_out(fresh), _out(model), atol=1e-6, rtol=0)


def test_unsupported_adapterhub_options_name_the_file(tmp_path) -> None:
    target = tmp_path / "gated"
    target.mkdir()
    raw = json.loads((FIXTURE / "seq_bn" / "adapter_config.json").read_text())
    raw["config"]["use_gating"] = True
    (target / "adapter_config.json").write_text(json.dumps(raw))
    (target / "adapter.safetensors").write_bytes(
        (FIXTURE / "seq_bn/adapter.safetensors").read_bytes()
    )
    model = _base()
    with pytest.raises(ValueError, match=r"gated.*use_gating"):
        load_adapterhub_adapter(model, target, "x")
    assert list_adapters(model) == {}
    raw["config"]["use_gating"] = False
    raw["config"]["architecture"] = "lora"
    (target / "adapter_config.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=r"architecture 'lora' is not supported"):
        load_adapterhub_adapter(model, target, "x")
    (target / "adapter.safetensors").unlink()
    (target / "pytorch_adapter.bin").write_bytes(b"pickle")
    with pytest.raises(ValueError, match="pickled weights are not loaded"):
        load_adapterhub_adapter(model, target, "x")


# ------------------------------------------------------------------ Stack (issue #19 item 2)


@pytest.mark.parametrize("kind", ["seq_bn", "double_seq_bn"])
def test_stack_equals_adapterhubs_stack(kind: str) -> None:
    """``set_active([a, b], "stack")`` gives AdapterHub's ``Stack(a, b)``. For seq_bn the second
    adapter continues from the first one's LayerNorm input (it was 1.86 off when it restarted
    from the un-adapted residual and dropped the first adapter's change)."""
    ref = _reference()
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / kind, "a")
    load_adapterhub_adapter(model, FIXTURE / f"{kind}_b", "b")
    set_active(model, ["a", "b"], "stack")
    stacked = ref[f"output.stack.{kind}"]
    assert (stacked - ref[f"output.{kind}"]).abs().max() > 0.1  # the second adapter matters
    torch.testing.assert_close(_out(model), stacked, atol=2e-5, rtol=0)
    set_active(model, "a")  # alone, still AdapterHub's single-adapter output
    torch.testing.assert_close(_out(model), ref[f"output.{kind}"], atol=2e-5, rtol=0)


def test_stack_keeps_the_first_adapter_at_init() -> None:
    """A fresh second adapter (zero up-projection) leaves the first adapter's output unchanged."""
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / "seq_bn", "ner")
    add_adapter(model, get_config("pfeiffer", reduction_factor=16), "task")
    set_active(model, ["ner", "task"], "stack")
    torch.testing.assert_close(_out(model), _reference()["output.seq_bn"], atol=2e-5, rtol=0)


def test_stack_of_parallel_adapters_sums_them_unlike_adapterhub() -> None:
    """AdapterHub's ``Stack`` of ``par_bn`` adapters keeps only the last one (each parallel
    adapter re-reads the sublayer input and replaces the previous output), which we do not copy:
    here a stack of parallel adapters adds each adapter's change, as ``"parallel"`` does."""
    ref = _reference()

    def run(active: list[str], composition: str = "stack") -> torch.Tensor:
        model = _base()
        load_adapterhub_adapter(model, FIXTURE / "par_bn", "a")
        load_adapterhub_adapter(model, FIXTURE / "par_bn_b", "b")
        set_active(model, active, composition)
        return _out(model)

    torch.testing.assert_close(ref["output.stack.par_bn"], run(["b"]), atol=2e-5, rtol=0)
    stacked = run(["a", "b"])
    torch.testing.assert_close(stacked, run(["a", "b"], "parallel"), atol=1e-6, rtol=0)
    assert (stacked - run(["b"])).abs().max() > 0.1  # adapter a still counts
