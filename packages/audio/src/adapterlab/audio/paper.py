"""The paper's published numbers and the method list of ``--preset paper``.

Cappellazzo et al., MLSP 2024 (arXiv:2312.03694v4), Table 1 (accuracy %, mean over folds for ESC-50 and
UrbanSound8K) and the few-shot figure (ESC-50 1/2/4/8 shots, Speech Commands 2/8/32/64 shots).
"""

from __future__ import annotations

#: paper row -> our method. Adapters are the paper's default parallel placement; BitFit is PETL-AST's.
PAPER_ROWS = {
    "Full FT": "full",
    "Linear": "linear",
    "BitFit": "bitfit_original",
    "SPT-300": "prompt",
    "DPT-25": "prompt_deep",
    "Prefix-24": "prefix",
    "LoRA": "lora",
    "Bottleneck Pfeiffer": "parallel",
    "Bottleneck Houlsby": "houlsby_parallel",
    "Conformer Pfeiffer": "conformer",
    "Conformer Houlsby": "conformer_houlsby",
}

#: Table 1 of the paper: method -> {dataset: accuracy %}
PAPER_ACCURACY = {
    "full": {
        "esc50": 87.48,
        "urbansound8k": 84.31,
        "speech_commands": 97.31,
        "fluent_speech": 93.29,
    },
    "linear": {
        "esc50": 75.85,
        "urbansound8k": 77.93,
        "speech_commands": 41.78,
        "fluent_speech": 27.52,
    },
    "bitfit_original": {
        "esc50": 86.05,
        "urbansound8k": 82.17,
        "speech_commands": 85.51,
        "fluent_speech": 63.85,
    },
    "prompt": {
        "esc50": 84.30,
        "urbansound8k": 79.73,
        "speech_commands": 75.28,
        "fluent_speech": 40.85,
    },
    "prompt_deep": {
        "esc50": 86.52,
        "urbansound8k": 83.67,
        "speech_commands": 89.18,
        "fluent_speech": 68.60,
    },
    "prefix": {
        "esc50": 82.93,
        "urbansound8k": 81.39,
        "speech_commands": 83.46,
        "fluent_speech": 55.75,
    },
    "lora": {
        "esc50": 86.45,
        "urbansound8k": 83.83,
        "speech_commands": 93.61,
        "fluent_speech": 76.00,
    },
    "parallel": {
        "esc50": 88.38,
        "urbansound8k": 83.44,
        "speech_commands": 91.33,
        "fluent_speech": 73.19,
    },
    "houlsby_parallel": {
        "esc50": 88.00,
        "urbansound8k": 82.80,
        "speech_commands": 91.75,
        "fluent_speech": 78.71,
    },
    "conformer": {
        "esc50": 88.30,
        "urbansound8k": 84.57,
        "speech_commands": 96.28,
        "fluent_speech": 95.48,
    },
    "conformer_houlsby": {
        "esc50": 85.97,
        "urbansound8k": 83.59,
        "speech_commands": 96.16,
        "fluent_speech": 96.34,
    },
}

#: few-shot figure: dataset -> shots -> method -> accuracy %
PAPER_FEW_SHOT = {
    "esc50": {
        1: {"parallel": 33.0, "conformer": 30.7, "lora": 31.8, "prompt_deep": 32.7},
        2: {"parallel": 45.5, "conformer": 41.0, "lora": 42.2, "prompt_deep": 44.3},
        4: {"parallel": 60.2, "conformer": 56.2, "lora": 58.8, "prompt_deep": 57.0},
        8: {"parallel": 72.8, "conformer": 71.1, "lora": 70.7, "prompt_deep": 71.9},
    },
    "speech_commands": {
        2: {"parallel": 7.2, "conformer": 5.9, "lora": 6.8, "prompt_deep": 9.4},
        8: {"parallel": 16.0, "conformer": 15.5, "lora": 15.2, "prompt_deep": 18.7},
        32: {"parallel": 47.9, "conformer": 58.7, "lora": 41.8, "prompt_deep": 43.1},
        64: {"parallel": 66.6, "conformer": 77.5, "lora": 59.8, "prompt_deep": 57.1},
    },
}


def paper_methods() -> list[str]:
    """Every method of the paper's Table 1, in its order."""
    return list(PAPER_ROWS.values())


def paper_accuracy(method: str, dataset: str, shots: int | None = None) -> float | None:
    """The paper's accuracy (%) for ``method`` on ``dataset`` (few-shot when ``shots``), if published."""
    if shots is None:
        return PAPER_ACCURACY.get(method, {}).get(dataset)
    return PAPER_FEW_SHOT.get(dataset, {}).get(shots, {}).get(method)
