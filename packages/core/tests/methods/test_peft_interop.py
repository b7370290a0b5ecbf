"""PEFT interoperability, both directions, with equal outputs on a tiny random RoBERTa."""

from __future__ import annotations

import json

import peft
import pytest
import torch
from adapterlab.core import LoraConfig, add_adapter, list_adapters
from adapterlab.core.interop import export_peft, load_peft_adapter
from adapterlab.core.testing import build_backbone
from torch import nn
from transformers import RobertaConfig, RobertaForSequenceClassification


def _roberta(seed: int = 0) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    cfg = RobertaConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=40,
        num_labels=3,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return RobertaForSequenceClassification(cfg).eval()


def _ids() -> torch.Tensor:
    return torch.randint(3, 50, (4, 7), generator=torch.Generator().manual_seed(1))


def _same_keys_as_peft(loaded: peft.PeftModel, directory) -> None:  # noqa: ANN001
    """Every tensor PEFT expects is in the file (PEFT only warns about missing keys)."""
    from safetensors.torch import load_file

    saved = load_file(str(directory / "adapter_model.safetensors"))
    expected = peft.get_peft_model_state_dict(loaded)
    assert set(saved) == set(expected)
    for k, v in expected.items():
        assert torch.equal(saved[k], v), k


def _train(model: nn.Module, forward, steps: int = 3) -> None:  # noqa: ANN001
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    for _ in range(steps):
        loss = forward(model).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def test_adapterlab_lora_loads_in_peft_with_equal_outputs(tmp_path) -> None:
    ids = _ids()
    model = _roberta()
    base_logits = model(input_ids=ids).logits
    add_adapter(model, LoraConfig(r=4, alpha=8, modules_to_save=["classifier"]), "task")
    _train(model, lambda m: m(input_ids=ids).logits)
    with torch.no_grad():
        ours = model(input_ids=ids).logits
    assert not torch.allclose(ours, base_logits, atol=1e-3)  # the adapter and head did change it
    export_peft(model, tmp_path / "peft", "task")

    cfg = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["modules_to_save"] == ["classifier"]
    loaded = peft.PeftModel.from_pretrained(_roberta(), str(tmp_path / "peft")).eval()
    with torch.no_grad():
        theirs = loaded(input_ids=ids).logits
    torch.testing.assert_close(theirs, ours, rtol=0, atol=0)
    _same_keys_as_peft(loaded, tmp_path / "peft")


def test_dora_rslora_from_a_wrapper_exports_the_backbone(tmp_path) -> None:
    model, x = build_backbone("roberta")
    with torch.no_grad():
        base = model.backbone(x).last_hidden_state
    add_adapter(model, LoraConfig(r=2, alpha=4, use_dora=True, use_rslora=True), "d")
    _train(model, lambda m: m(x))
    with torch.no_grad():
        ours = model.backbone(x).last_hidden_state
    assert not torch.allclose(ours, base, atol=1e-3)
    export_peft(model, tmp_path / "d", "d", submodule="backbone")
    fresh, _ = build_backbone("roberta")
    loaded = peft.PeftModel.from_pretrained(fresh.backbone, str(tmp_path / "d")).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).last_hidden_state, ours, rtol=0, atol=0)
    _same_keys_as_peft(loaded, tmp_path / "d")


def test_peft_directory_loads_into_adapterlab_with_equal_outputs(tmp_path) -> None:
    ids = _ids()
    theirs_model = peft.get_peft_model(
        _roberta(),
        peft.LoraConfig(
            r=4,
            lora_alpha=16,
            target_modules=["query", "value", "intermediate.dense"],
            init_lora_weights=False,
            modules_to_save=["classifier"],
        ),
    )
    with torch.no_grad():  # a head that differs from the base model's
        theirs_model.base_model.model.classifier.modules_to_save["default"].out_proj.weight.add_(
            0.5
        )
    theirs_model.eval()
    with torch.no_grad():
        theirs = theirs_model(input_ids=ids).logits
    theirs_model.save_pretrained(str(tmp_path / "p"))

    model = _roberta()
    with torch.no_grad():
        base_logits = model(input_ids=ids).logits
    load_peft_adapter(model, tmp_path / "p", "p")
    cfg = list_adapters(model)["p"]
    assert (cfg.r, cfg.alpha, cfg.modules_to_save) == (4, 16, ["classifier"])
    with torch.no_grad():
        ours = model(input_ids=ids).logits
    assert not torch.allclose(ours, base_logits, atol=1e-3)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)

    # regex targets + submodule: PEFT on the bare backbone, adapterlab on the wrapper
    wrapper, x = build_backbone("roberta")
    bare = peft.get_peft_model(
        build_backbone("roberta")[0].backbone,
        peft.LoraConfig(
            r=2, target_modules=r".*attention\.self\.(query|key)", init_lora_weights=False
        ),
    ).eval()
    bare.save_pretrained(str(tmp_path / "regex"))
    load_peft_adapter(wrapper, tmp_path / "regex", "rx", submodule="backbone")
    with torch.no_grad():
        torch.testing.assert_close(
            wrapper.backbone(x).last_hidden_state, bare(x).last_hidden_state, rtol=0, atol=0
        )


def test_bad_peft_directories_raise_naming_the_file(tmp_path) -> None:
    peft.get_peft_model(
        _roberta(), peft.IA3Config(target_modules=["key", "value"], feedforward_modules=[])
    ).save_pretrained(str(tmp_path / "ia3"))
    with pytest.raises(ValueError, match="adapter_config.json.*IA3"):
        load_peft_adapter(_roberta(), tmp_path / "ia3")
    src = peft.get_peft_model(_roberta(), peft.LoraConfig(r=4, target_modules=["query"]))
    src.save_pretrained(str(tmp_path / "bin"), safe_serialization=False)
    with pytest.raises(ValueError, match="pickled weights are not loaded"):
        load_peft_adapter(_roberta(), tmp_path / "bin")
    src.save_pretrained(str(tmp_path / "wide"))
    small, _ = build_backbone("roberta")
    with pytest.raises(ValueError, match="module the model lacks"):
        load_peft_adapter(small, tmp_path / "wide")
    model = _roberta()
    add_adapter(model, LoraConfig(), "x")
    from adapterlab.core import get_config

    add_adapter(model, get_config("pfeiffer"), "bn")
    with pytest.raises(ValueError, match="only LoRA"):
        export_peft(model, tmp_path / "bn", "bn")


def test_export_peft_keeps_other_files(tmp_path) -> None:
    model = _roberta()
    add_adapter(model, LoraConfig(target_modules=["query", "value"]), "x")
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "README.md").write_text("model card")
    (tmp_path / "p" / "trainer_state.json").write_text("{}")
    export_peft(model, tmp_path / "p", "x")
    export_peft(model, tmp_path / "p", "x")
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "trainer_state.json",
    ]
    peft.PeftModel.from_pretrained(_roberta(), str(tmp_path / "p"))  # still a PEFT directory


def test_seq_cls_task_type_loads_as_peft_reads_it(tmp_path) -> None:
    """PEFT's SEQ_CLS configs list modules_to_save ["classifier", "score"]; RoBERTa has only
    the first, and PEFT skips the other."""
    ids = _ids()
    theirs_model = peft.get_peft_model(
        _roberta(),
        peft.LoraConfig(task_type="SEQ_CLS", r=4, target_modules=["query", "value"]),
    )
    with torch.no_grad():
        for p in theirs_model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    theirs_model.eval()
    theirs_model.save_pretrained(str(tmp_path / "cls"))
    saved = json.loads((tmp_path / "cls" / "adapter_config.json").read_text())
    assert set(saved["modules_to_save"]) >= {"classifier", "score"}
    with torch.no_grad():
        theirs = theirs_model(input_ids=ids).logits
    model = _roberta()
    load_peft_adapter(model, tmp_path / "cls", "cls")
    assert list_adapters(model)["cls"].modules_to_save == ["classifier"]
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, theirs, rtol=0, atol=0)


def test_peft_bias_and_embedding_options_are_refused_up_front(tmp_path) -> None:
    for bias in ("lora_only", "all"):
        peft.get_peft_model(
            _roberta(), peft.LoraConfig(r=2, target_modules=["query"], bias=bias)
        ).save_pretrained(str(tmp_path / bias))
        model = _roberta()
        names = [n for n, _ in model.named_modules()]
        with pytest.raises(ValueError, match=rf"adapter_config.json: bias='{bias}'.*not supported"):
            load_peft_adapter(model, tmp_path / bias)
        assert [n for n, _ in model.named_modules()] == names
    peft.get_peft_model(
        _roberta(), peft.LoraConfig(r=2, target_modules=["word_embeddings", "query"])
    ).save_pretrained(str(tmp_path / "emb"))
    model = _roberta()
    with pytest.raises(ValueError, match="word_embeddings.*embedding layer.*not supported"):
        load_peft_adapter(model, tmp_path / "emb")
    assert list_adapters(model) == {}
    with pytest.raises(ValueError, match="embedding layer"):
        add_adapter(model, LoraConfig(target_modules=["word_embeddings"]))
    assert not any("lora" in n for n, _ in model.named_modules())


def test_failed_peft_load_rolls_back(tmp_path) -> None:
    from safetensors.torch import load_file, save_file

    peft.get_peft_model(
        _roberta(), peft.LoraConfig(r=2, target_modules=["query"], init_lora_weights=False)
    ).save_pretrained(str(tmp_path / "p"))
    path = tmp_path / "p" / "adapter_model.safetensors"
    tensors = load_file(str(path))
    tensors[sorted(tensors)[0]] = torch.full_like(tensors[sorted(tensors)[0]], float("nan"))
    save_file(tensors, str(path))
    model = _roberta()
    names = [n for n, _ in model.named_modules()]
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_peft_adapter(model, tmp_path / "p", "p")
    assert list_adapters(model) == {}
    assert [n for n, _ in model.named_modules()] == names


def test_lora_weights_stay_float32_on_a_bf16_base_like_peft() -> None:
    ids = _ids()
    config = dict(r=4, target_modules=["query", "value"], init_lora_weights=False)
    theirs = peft.get_peft_model(_roberta().to(torch.bfloat16), peft.LoraConfig(**config)).eval()
    peft_dtypes = {p.dtype for n, p in theirs.named_parameters() if "lora_" in n}
    model = _roberta().to(torch.bfloat16)
    add_adapter(model, LoraConfig(**config))
    ours = {p.dtype for n, p in model.named_parameters() if "lora_" in n}
    assert ours == peft_dtypes == {torch.float32}
    with torch.no_grad():
        assert model(input_ids=ids).logits.dtype == torch.bfloat16
