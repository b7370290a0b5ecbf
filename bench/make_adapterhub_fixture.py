"""Write the AdapterHub fixture of ``packages/core/tests/methods/test_adapterhub_interop.py``.

Runs in AdapterHub's own environment (``adapters`` pins an older ``transformers``)::

    uv run --isolated --no-project --with adapters==1.3.0 --with transformers==4.57.6 \
        --with torch==2.13.0 python bench/make_adapterhub_fixture.py packages/core/tests/fixtures/adapterhub

It builds a tiny seeded RoBERTa, adds a ``seq_bn`` (Pfeiffer) and a ``double_seq_bn`` (Houlsby)
adapter with random weights (std 0.3, so the adapters change the outputs clearly), saves
each with ``model.save_adapter(..., use_safetensors=True)``, and writes the base weights, the
input ids and AdapterHub's ``last_hidden_state`` for each adapter into ``reference.safetensors``.
Then, for ``seq_bn``, ``double_seq_bn`` and ``par_bn``, it adds a second adapter of the same kind
(``<kind>_b``) and records the output of ``Stack(<kind>, <kind>_b)`` as ``output.stack.<kind>``.
It imports nothing from adapterlab.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    import adapters
    import torch
    from safetensors.torch import save_file
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    model = RobertaModel(RobertaConfig(**CONFIG), add_pooling_layer=False).eval()
    base = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    adapters.init(model)
    ids = torch.randint(3, CONFIG["vocab_size"], (2, 9), generator=torch.Generator().manual_seed(1))
    tensors = {f"base.{k}": v for k, v in base.items()}
    tensors["input_ids"] = ids
    with torch.no_grad():
        tensors["output.none"] = model(input_ids=ids).last_hidden_state.contiguous()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, config in (("seq_bn", "seq_bn"), ("double_seq_bn", "double_seq_bn")):
        model.add_adapter(name, config=config)
        model.set_active_adapters(name)
        model.eval()
        gen = torch.Generator().manual_seed(2)
        with torch.no_grad():  # larger than the "bert" init, so that the adapters matter
            for pname, p in model.named_parameters():
                if f"adapters.{name}." in pname:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        with torch.no_grad():
            tensors[f"output.{name}"] = model(input_ids=ids).last_hidden_state.contiguous()
        model.save_adapter(str(args.out / name), name, use_safetensors=True)
        model.delete_adapter(name)
    # Stack(a, b): the adapter saved above, then a second one of the same kind (``<kind>_b``)
    from adapters.composition import Stack

    for name in ("seq_bn", "double_seq_bn", "par_bn"):
        if name == "par_bn":
            model.add_adapter(name, config=name)
            _fill(model, name, seed=4)
            model.save_adapter(str(args.out / name), name, use_safetensors=True)
        else:
            model.load_adapter(str(args.out / name), load_as=name, use_safetensors=True)
        second = f"{name}_b"
        model.add_adapter(second, config=name)
        _fill(model, second, seed=3)
        model.save_adapter(str(args.out / second), second, use_safetensors=True)
        model.set_active_adapters(Stack(name, second))
        model.eval()
        with torch.no_grad():
            tensors[f"output.stack.{name}"] = model(input_ids=ids).last_hidden_state.contiguous()
        model.delete_adapter(name)
        model.delete_adapter(second)
    save_file(tensors, str(args.out / "reference.safetensors"))
    meta = {"config": CONFIG, "adapters_version": adapters.__version__}
    (args.out / "reference.json").write_text(json.dumps(meta, indent=2) + "\n")


def _fill(model, name: str, seed: int) -> None:
    """Random adapter weights (std 0.3, larger than the "bert" init, so the adapter matters)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if f"adapters.{name}." in pname:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


if __name__ == "__main__":
    main()
