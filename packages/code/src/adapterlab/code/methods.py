"""The compared variants: paper name -> what is added with the core, what trains, learning rate.

| variant | NER adapter (TTC) | task side (core) | trains | encoder-side lr |
|---|---|---|---|---|
| full | - | ``full`` | encoder + decoder | 5e-5 |
| codeberter | initialises the adapter | ``pfeiffer`` (NER config), fine-tuned | NER adapter + decoder | 1e-3 |
| task_adapter | - | ``pfeiffer``, fresh | task adapter + decoder | 1e-3 |
| ner_task | frozen | ``pfeiffer`` stacked on the NER adapter | task adapter + decoder | 1e-3 |

CodeBERTER (Saberi & Fard, MSR 2023) is CodeBERT with NER adapters; its abstract reports
fine-tuning it with 20 % (refinement) and 23 % (summarization: "77 % fewer") of full
fine-tuning's trainable parameters, so its backbone is frozen and what trains is the NER
adapters and the decoder (the decoder is most of it: ~28 % of a CodeBERT + CodeXGLUE decoder
model). ``codeberter`` therefore fine-tunes the TTC-trained NER adapter with the decoder on a
frozen encoder; it differs from ``task_adapter`` only in the adapter's initial weights (TTC vs
fresh). ``ner_task`` keeps the NER adapter frozen under a new task adapter (AdapterHub's
``Stack``, as MAD-X stacks a task adapter on a language adapter). The NER adapter of ``ttc``
is a ``pfeiffer`` bottleneck with the token-type head as its ``modules_to_save``; the backbone
is frozen there too.
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
    ner: str
    """How the TTC-trained NER adapter is used: ``none``, ``init`` (it initialises the
    adapter that is fine-tuned) or ``frozen`` (kept frozen under a stacked task adapter)."""
    task_method: str
    """``full`` (every weight trains) or ``adapter`` (frozen encoder; adapter + decoder train)."""
    lr: float
    """Learning rate of the encoder side (the decoder has its own, ``decoder_lr``)."""
    paper_trainable: str = "-"
    """Trainable share the paper reports for this variant (for the table)."""

    @property
    def uses_ner(self) -> bool:
        """True when the variant reads a TTC-trained NER adapter."""
        return self.ner != "none"


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("full", "full fine-tuning (CodeBERT baseline)", "none", "full", 5e-5, "100"),
        Variant(
            "codeberter",
            "NER adapter (TTC-initialised) fine-tuned, frozen encoder",
            "init",
            "adapter",
            1e-3,
            "20-23",
        ),
        Variant("task_adapter", "fresh task adapter, frozen encoder", "none", "adapter", 1e-3),
        Variant(
            "ner_task", "frozen NER adapter + task adapter, stacked", "frozen", "adapter", 1e-3
        ),
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
    model: nn.Module,
    preset: str = "pfeiffer",
    reduction_factor: float = 16.0,
    head: str = "",
    seed: int | None = None,
) -> nn.Module:
    """Add the NER adapter (every layer) and make it and ``head`` the only trainable tensors."""
    config = ner_config(preset, reduction_factor, head or None)
    return add_adapter(model, config, name=NER, seed=seed)


def load_ner_adapter(
    model: nn.Module,
    directory: str | Path,
    *,
    name: str = NER,
    modules_to_save: list[str] | None = None,
    seed: int | None = None,
) -> None:
    """Load a TTC-trained NER adapter into ``model`` as ``name`` (its token-type head is left
    out; ``modules_to_save`` replaces the head in the config, e.g. the decoder when the loaded
    weights initialise the adapter that is fine-tuned)."""
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
    saved.modules_to_save = list(modules_to_save or [])
    add_adapter(model, saved, name=name, seed=seed)
    from safetensors import safe_open

    with safe_open(str(directory / "adapter.safetensors"), framework="pt") as handle:
        stored = {k for k in handle.keys() if not k.startswith("extra.")}  # noqa: SIM118
    wanted = {k for k in adapter_state_dict(model, name) if not k.startswith("extra.")}
    if stored != wanted:
        raise ValueError(
            f"NER adapter {directory} does not fit this encoder: missing "
            f"{sorted(wanted - stored)[:4]}, unexpected {sorted(stored - wanted)[:4]} (was it "
            "trained on another --model?)"
        )
    load_adapter(model, directory, name=name, strict=False)  # the TTC head is left out


def apply_variant(
    model: nn.Module,
    spec: Variant,
    task_reduction_factor: float = 16.0,
    ner_adapter: str | Path | None = None,
    seed: int | None = None,
) -> None:
    """Add what ``spec`` adds (see the module table) and set what trains; the trained adapter
    (which also saves the decoder) is always called ``TASK``. Initial adapter weights come from
    the core's per-adapter generator seeded by ``seed`` and the adapter's name, so at one seed
    the task adapter starts the same with or without a NER adapter loaded before it, and no
    later random draw (data order, dropout) moves."""
    if spec.uses_ner and ner_adapter is None:
        raise ValueError(
            f"variant {spec.name!r} needs --ner_adapter (the ner_adapter folder of a ttc run)"
        )
    if spec.task_method == "full":
        add_adapter(model, FullFinetuneConfig(), name=TASK, seed=seed)
    elif spec.ner == "init":  # CodeBERTER: the NER adapter itself is fine-tuned with the decoder
        load_ner_adapter(model, ner_adapter, name=TASK, modules_to_save=DECODER_MODULES, seed=seed)
    else:
        if spec.ner == "frozen":
            load_ner_adapter(model, ner_adapter, seed=seed)
        config = get_config(
            "pfeiffer", reduction_factor=task_reduction_factor, modules_to_save=DECODER_MODULES
        )
        add_adapter(model, config, name=TASK, seed=seed)
    if spec.ner == "frozen":
        for p in get_adapter_parameters(model, NER):
            p.requires_grad_(False)
        # AdapterHub's Stack("ner", "task"): the task adapter reads the NER adapter's output
        set_active(model, [NER, TASK], composition="stack")
