"""adapterlab.core: adapter methods, injection into any ``nn.Module``, adapter-only save/load.

Quick start::

    from adapterlab.core import add_adapter, get_config, save_adapter, load_adapter
    add_adapter(model, get_config("pfeiffer"), name="task")
    ...train...
    save_adapter(model, "runs/task-adapter", name="task")
    load_adapter(fresh_model, "runs/task-adapter", name="task")

The training engine lives in :mod:`adapterlab.core.engine`.
"""

from . import tuners  # noqa: F401  (registers the methods)
from .architectures import detect_architectures
from .config import (
    AdapterConfig,
    available_methods,
    available_presets,
    config_from_dict,
    get_config,
    library_version,
    load_config,
    register_config,
    register_preset,
)
from .io import adapter_state_dict, load_adapter, save_adapter
from .merge import merge_adapter
from .model import (
    TrainableSummary,
    add_adapter,
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
from .tuners.prompt import PrefixConfig, PromptConfig
from .tuners.registry import AdapterMethod, register_method

__version__ = library_version()

__all__ = [
    "AdapterConfig",
    "AdapterMethod",
    "BitFitConfig",
    "BottleneckConfig",
    "ConformerConfig",
    "FullFinetuneConfig",
    "LinearProbeConfig",
    "LoraConfig",
    "PrefixConfig",
    "PromptConfig",
    "TargetError",
    "TrainableSummary",
    "adapter_state_dict",
    "add_adapter",
    "available_methods",
    "available_presets",
    "config_from_dict",
    "detect_architectures",
    "disable_adapters",
    "get_adapter_parameters",
    "get_config",
    "library_version",
    "list_adapters",
    "load_adapter",
    "load_config",
    "match_modules",
    "merge_adapter",
    "register_config",
    "register_method",
    "register_preset",
    "save_adapter",
    "set_active",
    "trainable_summary",
]

# methods A: MoSA, low-bit, MixDA, adapter arithmetic
from .arithmetic import average_adapters  # noqa: E402
from .tuners.lowbit import LowBitConfig  # noqa: E402
from .tuners.mixda import MixDAConfig  # noqa: E402
from .tuners.mosa import MoSAConfig  # noqa: E402

__all__ += ["LowBitConfig", "MixDAConfig", "MoSAConfig", "average_adapters"]

# methods B: Poly/MHR, LT-SFT, PEFT interoperability
from .interop import export_peft, load_peft_adapter  # noqa: E402
from .tuners.poly_mhr import PolyConfig, prepare_finetune, set_task_ids, use_task_ids  # noqa: E402
from .tuners.sft import (  # noqa: E402
    SparseDiff,
    apply_sft,
    load_sft,
    lt_sft,
    revert_sft,
    save_sft,
)

__all__ += [
    "PolyConfig",
    "SparseDiff",
    "apply_sft",
    "export_peft",
    "load_peft_adapter",
    "load_sft",
    "lt_sft",
    "prepare_finetune",
    "revert_sft",
    "save_sft",
    "set_task_ids",
    "use_task_ids",
]

# vl: p-adapter (p-Laplacian adaptation)
from .tuners.p_adapter import PAdapterConfig, p_adapter_modules  # noqa: E402

__all__ += ["PAdapterConfig", "p_adapter_modules"]
