"""adapterlab.text: language adaptation with adapters by masked language modelling.

Gurgurov et al., "Small Models, Big Impact: Efficient Corpus and Graph-Based Adaptation of Small
Multilingual Language Models for Low-Resource Languages" (ACL 2025 SRW): seq_bn, seq_bn_inv and
LoRA language adapters trained by MLM on knowledge-graph sentences and free text.
"""

from .config import LangAdaptConfig
from .data import build_corpora, fetch_wordnet_base, parse_data_noun
from .methods import METHODS, language_adapter_config
from .models import TextModel, load_mlm

__all__ = [
    "METHODS",
    "LangAdaptConfig",
    "TextModel",
    "build_corpora",
    "fetch_wordnet_base",
    "language_adapter_config",
    "load_mlm",
    "parse_data_noun",
]
