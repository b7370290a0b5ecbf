"""Interoperability with other adapter libraries: PEFT LoRA and AdapterHub bottleneck adapters."""

from .adapterhub import export_adapterhub, load_adapterhub_adapter
from .peft import export_peft, load_peft_adapter

__all__ = ["export_adapterhub", "export_peft", "load_adapterhub_adapter", "load_peft_adapter"]
