"""The compared variants: paper name -> what is added with the core, what trains, learning rate.

| variant | NER adapter | task side (core) | trains | encoder lr |
|---|---|---|---|---|
| full | - | ``full`` | encoder + decoder | 5e-5 |
| codeberter | frozen | ``full`` | encoder + decoder (NER adapter frozen) | 5e-5 |
| task_adapter | - | ``pfeiffer`` + decoder | task adapter + decoder | 1e-3 |
| ner_task | frozen | ``pfeiffer`` stacked after NER | task adapter + decoder | 1e-3 |

The NER adapter of ``ttc`` is a ``pfeiffer`` bottleneck with the token-type head as its
``modules_to_save``; the backbone is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapterlab.core import (
    BottleneckConfig,
    FullFinetuneConfig,
    adapter_state_dict,
    add_adapter,
    get_adapter_parameters,
    get_config,
    list_adapters,
    load_adapter,
    set_active,
)
from torch import nn

__all__ = [
    "NER",
    "TASK",
    "VARIANTS",
    "Variant",
    "add_ner_adapter",
    "apply_variant",
    "load_ner_adapter",
]

NER = "ner"
TASK = "task"
DECODER_MODULES = ["decoder", "output_dense"]


@dataclass(frozen=True)
class Variant:
    """One row of the comparison."""

    name: str
    description: str
    uses_ner: bool
    task_method: str  # "full" or "adapter"
    lr: float


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("full", "full fine-tuning (CodeBERT baseline)", False, "full", 5e-5),
        Variant(
            "codeberter", "NER adapters (TTC, frozen) + encoder fine-tuned", True, "full", 5e-5
        ),
        Variant("task_adapter", "task adapter only (frozen encoder)", False, "adapter", 1e-3),
        Variant("ner_task", "NER adapter + task adapter, stacked", True, "adapter", 1e-3),
    )
}


def variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; choose from {list(VARIANTS)}") from None


def ner_config(preset: str = "pfeiffer", reduction_factor: float = 16.0, head: str | None = None):
    """The NER adapter's core config (a bottleneck preset; ``head`` trains and saves with it)."""
    if preset not in ("pfeiffer", "houlsby"):
        raise ValueError(f"NER adapter preset must be pfeiffer or houlsby, got {preset!r}")
    return get_config(
        preset, reduction_factor=reduction_factor, modules_to_save=[head] if head else []
    )


def add_ner_adapter(
    model: nn.Module, preset: str = "pfeiffer", reduction_factor: float = 16.0, head: str = ""
) -> nn.Module:
    """Add the NER adapter (every layer) and make it and ``head`` the only trainable tensors."""
    return add_adapter(model, ner_config(preset, reduction_factor, head or None), name=NER)


def load_ner_adapter(model: nn.Module, directory: str | Path) -> None:
    """Load a TTC-trained NER adapter into ``model`` (its token-type head is left out)."""
    from adapterlab.core import load_config

    directory = Path(directory)
    if not (directory / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"{directory} holds no NER adapter (adapter_config.json); run `adapterlab-code ttc` "
            "first and pass its <run>/ner_adapter"
        )
    saved = load_config(directory / "adapter_config.json")
    if not isinstance(saved, BottleneckConfig):
        raise ValueError(f"{directory} holds a {saved.method!r} adapter, not a bottleneck NER one")
    saved.modules_to_save = []
    add_adapter(model, saved, name=NER)
    from safetensors import safe_open

    with safe_open(str(directory / "adapter.safetensors"), framework="pt") as handle:
        stored = {k for k in handle.keys() if not k.startswith("extra.")}  # noqa: SIM118
    wanted = set(adapter_state_dict(model, NER))
    if stored != wanted:
        raise ValueError(
            f"NER adapter {directory} does not fit this encoder: missing "
            f"{sorted(wanted - stored)[:4]}, unexpected {sorted(stored - wanted)[:4]} (was it "
            "trained on another --model?)"
        )
    load_adapter(model, directory, name=NER, strict=False)  # the TTC head is left out


def apply_variant(model: nn.Module, spec: Variant, task_reduction_factor: float = 16.0) -> None:
    """Add the task side of ``spec`` (after the NER adapter, when it uses one) and set what
    trains: the NER adapter is always frozen here."""
    if spec.uses_ner and NER not in list_adapters(model):
        raise ValueError(f"variant {spec.name!r} needs the NER adapter loaded first")
    if spec.task_method == "full":
        add_adapter(model, FullFinetuneConfig(), name=TASK)
    else:
        config = get_config(
            "pfeiffer", reduction_factor=task_reduction_factor, modules_to_save=DECODER_MODULES
        )
        add_adapter(model, config, name=TASK)
    if spec.uses_ner:
        for p in get_adapter_parameters(model, NER):
            p.requires_grad_(False)
        # AdapterHub's Stack("ner", "task"): the task adapter reads the NER adapter's output
        set_active(model, [NER, TASK], composition="stack")
