"""adapterlab.core: adapter methods, injection into any ``nn.Module``, adapter-only save/load.

Quick start::

    from adapterlab.core import add_adapter, get_config, save_adapter, load_adapter
    add_adapter(model, get_config("pfeiffer"), name="task")
    ...train...
    save_adapter(model, "runs/task-adapter", name="task")
    load_adapter(fresh_model, "runs/task-adapter", name="task")

The training engine lives in :mod:`adapterlab.core.engine`. PEFT is imported on first use
(a LoRA or Poly adapter, PEFT interop), not by ``import adapterlab.core``.
"""

from typing import Any

from . import tuners  # noqa: F401  (registers the methods)
from .architectures import detect_architectures
from .arithmetic import average_adapters, combine_domain_adapters
from .config import (
    AdapterConfig,
    available_presets,
    config_from_dict,
    get_config,
    library_version,
    load_config,
    register_preset,
)
from .interop import export_adapterhub, export_peft, load_adapterhub_adapter, load_peft_adapter
from .io import adapter_state_dict, load_adapter, save_adapter
from .merge import merge_adapter
from .model import (
    TrainableSummary,
    add_adapter,
    delete_adapter,
    disable_adapters,
    get_adapter_parameters,
    list_adapters,
    set_active,
    trainable_summary,
)
from .targeting import TargetError, match_modules
from .tuners.baselines import BitFitConfig, FullFinetuneConfig, LinearProbeConfig
from .tuners.bottleneck import BottleneckConfig
from .tuners.conformer import ConformerConfig
from .tuners.lora import LoraConfig
from .tuners.lowbit import LowBitConfig
from .tuners.mixda import MixDAConfig
from .tuners.mosa import MoSAConfig
from .tuners.poly_mhr import PolyConfig, prepare_finetune
from .tuners.prompt import PrefixConfig, PromptConfig
from .tuners.registry import AdapterMethod, available_methods, register_method
from .tuners.sft import SparseDiff, apply_sft, load_sft, lt_sft, revert_sft, save_sft

__version__ = library_version()

# Task-id helpers (Poly/MHR, Hyperformer, multi-task adapters).
_LAZY_POLY = ("set_task_ids", "use_task_ids")


def __getattr__(name: str) -> Any:
    if name in _LAZY_POLY:
        from .tuners import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AdapterConfig",
    "AdapterMethod",
    "BitFitConfig",
    "BottleneckConfig",
    "ConformerConfig",
    "FullFinetuneConfig",
    "LinearProbeConfig",
    "LoraConfig",
    "LowBitConfig",
    "MixDAConfig",
    "MoSAConfig",
    "PolyConfig",
    "PrefixConfig",
    "PromptConfig",
    "SparseDiff",
    "TargetError",
    "TrainableSummary",
    "adapter_state_dict",
    "add_adapter",
    "apply_sft",
    "available_methods",
    "available_presets",
    "average_adapters",
    "combine_domain_adapters",
    "config_from_dict",
    "delete_adapter",
    "detect_architectures",
    "disable_adapters",
    "export_adapterhub",
    "export_peft",
    "get_adapter_parameters",
    "get_config",
    "library_version",
    "list_adapters",
    "load_adapter",
    "load_adapterhub_adapter",
    "load_config",
    "load_peft_adapter",
    "load_sft",
    "lt_sft",
    "match_modules",
    "merge_adapter",
    "prepare_finetune",
    "register_method",
    "register_preset",
    "revert_sft",
    "save_adapter",
    "save_sft",
    "set_active",
    "set_task_ids",
    "trainable_summary",
    "use_task_ids",
]

# vl: p-adapter (p-Laplacian adaptation)
from .tuners.p_adapter import PAdapterConfig, p_adapter_modules  # noqa: E402

__all__ += ["PAdapterConfig", "p_adapter_modules"]

# VL-Adapter family and invertible adapters (issue 23)
from .tuners.compacter import CompacterConfig  # noqa: E402
from .tuners.hyperformer import HyperformerConfig  # noqa: E402
from .tuners.invertible import InvertibleBottleneckConfig  # noqa: E402
from .tuners.multitask import MultiTaskConfig  # noqa: E402

__all__ += [
    "CompacterConfig",
    "HyperformerConfig",
    "InvertibleBottleneckConfig",
    "MultiTaskConfig",
]
