"""The LLM-Adapters prompt template (Hu et al., EMNLP 2023, "LLM-Adapters: An Adapter Family for
Parameter-Efficient Fine-Tuning of Large Language Models").

Two styles:

- ``release``: byte for byte what the released code feeds the model. ``finetune.py`` builds the
  training text from an indented f-string, so every line after the first carries 16 leading
  spaces (blank lines included) and the first line ends with two spaces and the literal text
  of a ruff/flake8 line-length directive (``noqa`` for E501), a lint comment that slipped
  inside the string. ``commonsense_evaluate.py`` /
  ``evaluate.py`` build the evaluation prompt without the comment, with empty blank lines, a
  space after "request." when there is no input, and end it with ``"### Response:\\n"`` plus 16
  spaces. Training and evaluation prompts therefore differ.
- ``alpaca`` (our default): the Alpaca template the release meant, identical in training and
  evaluation (no comment, no indentation). The release's mismatch is kept reproducible, not
  repeated by default.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["PromptStyle", "eval_prompt", "train_text"]

PromptStyle = Literal["alpaca", "release"]

_HEAD_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request."
)
_HEAD_PLAIN = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
_PAD = " " * 16


def eval_prompt(instruction: str, input: str = "", style: PromptStyle = "alpaca") -> str:
    """The prompt the model completes at evaluation (everything up to the response)."""
    if style == "release":
        if input:
            return (
                f"{_HEAD_INPUT}\n\n{_PAD}### Instruction:\n{_PAD}{instruction}\n\n"
                f"{_PAD}### Input:\n{_PAD}{input}\n\n{_PAD}### Response:\n{_PAD}"
            )
        return (
            f"{_HEAD_PLAIN} \n\n{_PAD}### Instruction:\n{_PAD}{instruction}\n\n"
            f"{_PAD}### Response:\n{_PAD}"
        )
    if style != "alpaca":
        raise ValueError(f"prompt style must be 'alpaca' or 'release', got {style!r}")
    if input:
        return (
            f"{_HEAD_INPUT}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n"
            "### Response:\n"
        )
    return f"{_HEAD_PLAIN}\n\n### Instruction:\n{instruction}\n\n### Response:\n"


def train_text(
    instruction: str, input: str, output: str, style: PromptStyle = "alpaca"
) -> tuple[str, str]:
    """``(prompt, response)`` of one training example; the model is trained on their
    concatenation (loss on the response only, or on both with ``train_on_inputs``)."""
    if style == "release":
        noqa = "  #" + " noqa: E501"  # split so that linters do not read it as a directive
        if input:
            prompt = (
                f"{_HEAD_INPUT}{noqa}\n\n{_PAD}### Instruction:\n{_PAD}{instruction}\n{_PAD}\n"
                f"{_PAD}### Input:\n{_PAD}{input}\n{_PAD}\n{_PAD}### Response:\n{_PAD}"
            )
        else:
            prompt = (
                f"{_HEAD_PLAIN}{noqa}\n\n{_PAD}### Instruction:\n{_PAD}{instruction}\n{_PAD}\n"
                f"{_PAD}### Response:\n{_PAD}"
            )
        return prompt, output
    return eval_prompt(instruction, input, style), output
