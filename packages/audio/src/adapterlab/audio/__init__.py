"""adapterlab.audio: parameter-efficient transfer learning for the Audio Spectrogram Transformer.

Implements Cappellazzo et al., "Parameter-Efficient Transfer Learning of Audio Spectrogram Transformers"
(MLSP 2024, arXiv:2312.03694) on top of ``adapterlab.core``: Kaldi-compatible batched fbank features, loaders for
ESC-50 / UrbanSound8K / Speech Commands v2 / Fluent Speech Commands, AST loading with positional-embedding
adaptation, every PETL method of the study through the core adapter API, training with the core engine,
and the ``adapterlab-ast`` CLI (train / eval / sweep).
"""

from .audio_io import AudioFileError, load_audio
from .demo import DEMO, demo_backbone
from .features import AUDIOSET_MEAN, AUDIOSET_STD, FbankConfig, fbank
from .loaders.spoken_words import embedded_speech
from .methods import METHODS, adapter_config, apply_method
from .model import (
    DEFAULT_CHECKPOINT,
    ASTClassifier,
    ModelLoadError,
    adapt_position_embeddings,
    build_classifier,
    load_ast,
    make_tiny_checkpoint,
    tiny_ast_config,
)
from .pretrain import PretrainSettings, pretrain_backbone
from .specaug import SpecAugment

__all__ = [
    "AUDIOSET_MEAN",
    "AUDIOSET_STD",
    "DEFAULT_CHECKPOINT",
    "DEMO",
    "METHODS",
    "ASTClassifier",
    "AudioFileError",
    "FbankConfig",
    "ModelLoadError",
    "PretrainSettings",
    "SpecAugment",
    "adapt_position_embeddings",
    "adapter_config",
    "apply_method",
    "build_classifier",
    "demo_backbone",
    "embedded_speech",
    "fbank",
    "load_ast",
    "load_audio",
    "make_tiny_checkpoint",
    "pretrain_backbone",
    "tiny_ast_config",
]
