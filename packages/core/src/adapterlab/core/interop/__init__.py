"""Interoperability with other adapter libraries (PEFT LoRA directories, both directions)."""

from .peft import export_peft, load_peft_adapter

__all__ = ["export_peft", "load_peft_adapter"]
