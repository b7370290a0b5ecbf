"""Compacter, Compacter++ and invertible adapters against AdapterHub (``adapters`` 1.3).

The fixture in ``tests/fixtures/adapterhub_methods`` was written by AdapterHub itself
(``bench/make_adapterhub_methods_fixture.py``, run in AdapterHub's isolated environment): a tiny
``RobertaForMaskedLM``'s weights, adapters with random weights saved by ``model.save_adapter``
and AdapterHub's MLM logits with each adapter active (its flex MLM head, which runs the
invertible adapter's inverse before the vocabulary projection).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from adapterlab.core import export_adapterhub, list_adapters, load_adapterhub_adapter
from adapterlab.core.tuners.invertible import GLOWCoupling
from safetensors.torch import load_file
from torch import nn
from transformers import RobertaConfig, RobertaForMaskedLM

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adapterhub_methods"
WITH_LOGITS = [
    "compacter",
    "compacter_pp",
    "compacter_unshared",
    "compacter_frule",
    "seq_bn_inv",
    "double_seq_bn_inv",
]


def _reference() -> dict[str, torch.Tensor]:
    return load_file(str(FIXTURE / "reference.safetensors"))


def _base() -> RobertaForMaskedLM:
    ref = _reference()
    meta = json.loads((FIXTURE / "reference.json").read_text())
    model = RobertaForMaskedLM(RobertaConfig(**meta["config"])).eval()
    base = {k.removeprefix("base."): v for k, v in ref.items() if k.startswith("base.")}
    model.load_state_dict(base)
    return model


def _logits(model: nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=_reference()["input_ids"]).logits


def test_base_weights_reproduce_adapterhubs_plain_logits() -> None:
    torch.testing.assert_close(_logits(_base()), _reference()["logits.none"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", WITH_LOGITS)
def test_adapterhub_adapter_reproduces_its_logits(kind: str) -> None:
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / kind, "hub")
    ref = _reference()
    assert (ref[f"logits.{kind}"] - ref["logits.none"]).abs().max() > 0.1  # the adapter matters
    torch.testing.assert_close(_logits(model), ref[f"logits.{kind}"], atol=3e-5, rtol=0)
    method = list_adapters(model)["hub"].method
    assert method == ("compacter" if kind.startswith("compacter") else "bottleneck_inv")


def test_invertible_inverse_runs_on_the_output_embedding() -> None:
    """Without the inverse before the tied vocabulary projection the logits differ: AdapterHub's
    flex head applies it, and so do we (also on HF's own static MLM head)."""
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / "seq_bn_inv", "hub")
    out = model.lm_head.decoder
    out.set_disabled(True)  # the output wrapper only: no inverse
    try:
        no_inverse = _logits(model)
    finally:
        out.set_disabled(False)
    assert (no_inverse - _reference()["logits.seq_bn_inv"]).abs().max() > 1e-2


def test_glow_adapter_loads_with_adapterhubs_keys_and_inverts() -> None:
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / "seq_bn_inv_glow", "glow")
    coupling = model.roberta.embeddings.adapters["glow"]
    assert isinstance(coupling, GLOWCoupling)
    hub = load_file(str(FIXTURE / "seq_bn_inv_glow" / "adapter.safetensors"))
    torch.testing.assert_close(
        coupling.s2[2].weight, hub["roberta.invertible_adapters.seq_bn_inv_glow.s2.2.weight"]
    )
    x = torch.randn(2, 5, 32, dtype=torch.float64)
    double = GLOWCoupling(32).double()
    double.load_state_dict(coupling.state_dict())
    torch.testing.assert_close(double(double(x), rev=True), x, atol=1e-12, rtol=0)


@pytest.mark.parametrize("kind", [*WITH_LOGITS, "seq_bn_inv_glow"])
def test_export_writes_adapterhubs_layout_and_round_trips(kind: str, tmp_path) -> None:
    model = _base()
    load_adapterhub_adapter(model, FIXTURE / kind, kind)
    export_adapterhub(model, tmp_path / "out", kind)
    ours = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    theirs = json.loads((FIXTURE / kind / "adapter_config.json").read_text())
    assert ours["config"] == theirs["config"]
    for field in ("hidden_size", "model_type", "name"):
        assert ours[field] == theirs[field]
    ours_w = load_file(str(tmp_path / "out" / "adapter.safetensors"))
    theirs_w = load_file(str(FIXTURE / kind / "adapter.safetensors"))
    assert set(ours_w) == set(theirs_w)
    for key in theirs_w:
        torch.testing.assert_close(ours_w[key], theirs_w[key], atol=0, rtol=0)
    fresh = _base()
    load_adapterhub_adapter(fresh, tmp_path / "out", "again")
    torch.testing.assert_close(_logits(fresh), _logits(model), atol=1e-6, rtol=0)


def test_unsupported_phm_options_name_the_file(tmp_path) -> None:
    target = tmp_path / "shared_w"
    target.mkdir()
    raw = json.loads((FIXTURE / "compacter" / "adapter_config.json").read_text())
    raw["config"]["shared_W_phm"] = True
    (target / "adapter_config.json").write_text(json.dumps(raw))
    (target / "adapter.safetensors").write_bytes(
        (FIXTURE / "compacter" / "adapter.safetensors").read_bytes()
    )
    model = _base()
    with pytest.raises(ValueError, match=r"shared_w.*shared_W_phm"):
        load_adapterhub_adapter(model, target, "x")
    assert list_adapters(model) == {}
