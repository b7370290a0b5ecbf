"""The compared language adapters: the paper's name -> core preset and options.

"Small Models, Big Impact" (Gurgurov et al., ACL 2025 SRW) trains AdapterHub's ``seq_bn``,
``seq_bn_inv`` and ``lora`` at library defaults: seq_bn reduction 16 at the FFN output, NICE
coupling with reduction 2, LoRA r=8, alpha=8 on query and value.
"""

from __future__ import annotations

from adapterlab.core import AdapterConfig, get_config

__all__ = ["HEAD_TRANSFORM", "METHODS", "TASK_ADAPTER", "language_adapter_config"]

# the MLM head's transform (dense + LayerNorm) trains with every method: all-MiniLM-L6-v2 ships
# without it (AdapterHub's static-head setup also leaves it trainable)
HEAD_TRANSFORM = "mlm.cls.predictions.transform"

METHODS: dict[str, tuple[str, dict]] = {
    "seq_bn": ("pfeiffer", {"reduction_factor": 16}),
    "seq_bn_inv": ("seq_bn_inv", {"reduction_factor": 16, "inv_reduction_factor": 2.0}),
    "lora": ("lora", {"r": 8, "alpha": 8, "target_modules": ["query", "value"]}),
}

# downstream: a task adapter stacked on the frozen language adapter (the paper: Stack(lang,
# task) with a new seq_bn task adapter). Ours sits after the attention and FFN outputs
# (``houlsby``), so it never shares a wrapper with the language adapter.
TASK_ADAPTER = ("houlsby", {"reduction_factor": 16})


def language_adapter_config(method: str) -> AdapterConfig:
    """The core config of language adapter ``method`` (head transform trained alongside)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    preset, options = METHODS[method]
    return get_config(preset, modules_to_save=[HEAD_TRANSFORM], **options)
