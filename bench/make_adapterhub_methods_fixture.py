"""Write the AdapterHub fixture of ``packages/core/tests/methods/test_adapterhub_methods.py``.

Compacter, Compacter++ and the invertible adapters (``seq_bn_inv``, ``double_seq_bn_inv``, GLOW),
saved by AdapterHub itself. Runs in AdapterHub's own environment::

    uv run --isolated --no-project --with adapters==1.3.0 --with transformers==4.57.6 \
        --with torch==2.13.0 python bench/make_adapterhub_methods_fixture.py \
        packages/core/tests/fixtures/adapterhub_methods

A tiny seeded ``RobertaForMaskedLM`` gives the base weights; AdapterHub's flex-head model
(``RobertaAdapterModel`` + ``add_masked_lm_head``, whose head runs the inverse of the invertible
adapter before the vocabulary projection) is loaded with the same weights and checked to give the
same logits. Each adapter gets random weights (std 0.3, so it changes the outputs clearly), is
saved with ``model.save_adapter(..., use_safetensors=True)`` and its MLM logits are stored in
``reference.safetensors``. AdapterHub's GLOW coupling does not run on ``[batch, tokens, dim]``
inputs (it slices the token axis), so the GLOW adapter is saved without reference logits. It
imports nothing from adapterlab.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CONFIG = dict(
    vocab_size=60,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=40,
    hidden_dropout_prob=0.0,
    attention_probs_dropout_prob=0.0,
)


def _adapter_configs():  # noqa: ANN202
    from adapters import (
        CompacterConfig,
        CompacterPlusPlusConfig,
        DoubleSeqBnInvConfig,
        SeqBnInvConfig,
    )

    return {
        "compacter": CompacterConfig(reduction_factor=4),
        "compacter_pp": CompacterPlusPlusConfig(reduction_factor=4),
        "compacter_unshared": CompacterConfig(
            reduction_factor=4, phm_dim=2, shared_phm_rule=False, factorized_phm_W=False
        ),
        "compacter_frule": CompacterPlusPlusConfig(
            reduction_factor=4, factorized_phm_rule=True, phm_rank=2
        ),
        "seq_bn_inv": SeqBnInvConfig(),
        "double_seq_bn_inv": DoubleSeqBnInvConfig(),
        "seq_bn_inv_glow": SeqBnInvConfig(inv_adapter="glow"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    import adapters
    import torch
    from adapters import RobertaAdapterModel
    from safetensors.torch import save_file
    from transformers import RobertaConfig, RobertaForMaskedLM

    torch.manual_seed(0)
    config = RobertaConfig(**CONFIG)
    hf = RobertaForMaskedLM(config).eval()
    base = {k: v.detach().clone().contiguous() for k, v in hf.state_dict().items()}
    flex = RobertaAdapterModel(config).eval()
    flex.add_masked_lm_head("mlm")
    flex.roberta.load_state_dict(
        {k.removeprefix("roberta."): v for k, v in base.items() if k.startswith("roberta.")},
        strict=False,
    )
    head = flex.heads["mlm"]
    with torch.no_grad():  # BertStyleMaskedLMHead: 0 dense, 1 gelu, 2 LayerNorm, 3 vocabulary
        head[0].weight.copy_(hf.lm_head.dense.weight)
        head[0].bias.copy_(hf.lm_head.dense.bias)
        head[2].weight.copy_(hf.lm_head.layer_norm.weight)
        head[2].bias.copy_(hf.lm_head.layer_norm.bias)
        head[3].weight.copy_(hf.lm_head.decoder.weight)
        head[3].bias.copy_(hf.lm_head.bias)
    ids = torch.randint(3, CONFIG["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = hf(input_ids=ids).logits
        flex_plain = flex(input_ids=ids).logits
    assert torch.allclose(plain, flex_plain, atol=1e-5), (plain - flex_plain).abs().max()
    tensors = {f"base.{k}": v for k, v in base.items()}
    tensors["input_ids"] = ids
    tensors["logits.none"] = plain.contiguous()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, adapter_config in _adapter_configs().items():
        flex.add_adapter(name, config=adapter_config)
        flex.set_active_adapters(name)
        flex.eval()
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():
            for pname, p in flex.named_parameters():
                if f".{name}." in pname:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        if "glow" not in name:
            with torch.no_grad():
                tensors[f"logits.{name}"] = flex(input_ids=ids).logits.contiguous()
        flex.save_adapter(str(args.out / name), name, use_safetensors=True)
        flex.delete_adapter(name)
    save_file(tensors, str(args.out / "reference.safetensors"))
    meta = {"config": CONFIG, "adapters_version": adapters.__version__}
    (args.out / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")


if __name__ == "__main__":
    main()
