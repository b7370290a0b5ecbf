"""Answer extraction of LLM-Adapters' evaluation scripts (``evaluate.py``,
``commonsense_evaluate.py``), with the release's behaviour kept reproducible where it is wrong.

- numbers (GSM8K, SVAMP, MAWPS, AddSub, MultiArith, SingleEq): commas removed, the **last**
  match of ``-?\\d+\\.?\\d*``, correct when within 0.001 of the label. With no number the release
  crashes (old ``evaluate.py``: ``float(pred[-1])`` on an empty list) or returns ``inf``; here it
  is ``None`` (never correct).
- letters (AQuA): the release takes the first capital A-E *anywhere* (so "Answer: (C)" gives "A",
  the A of "Answer"); ``release=True`` keeps that; the default takes the first standalone
  letter A-E (``\\b[A-E]\\b``).
- commonsense option words: the first match of the dataset's option words (``true|false``,
  ``solution1|solution2``, ``answer1..5``, ``ending1..4``, ``option1|option2``), exact match.
"""

from __future__ import annotations

import re

__all__ = [
    "COMMONSENSE_OPTIONS",
    "extract_letter",
    "extract_number",
    "extract_option",
    "is_correct_number",
]

_NUMBER = re.compile(r"-?\d+\.?\d*")

#: the option words each commonsense test set answers with (commonsense_evaluate.py)
COMMONSENSE_OPTIONS = {
    "boolq": ("true", "false"),
    "piqa": ("solution1", "solution2"),
    "social_i_qa": tuple(f"answer{i}" for i in range(1, 6)),
    "ARC-Challenge": tuple(f"answer{i}" for i in range(1, 6)),
    "ARC-Easy": tuple(f"answer{i}" for i in range(1, 6)),
    "openbookqa": tuple(f"answer{i}" for i in range(1, 6)),
    "hellaswag": tuple(f"ending{i}" for i in range(1, 5)),
    "winogrande": ("option1", "option2"),
}


def extract_number(text: str) -> float | None:
    """The last number in ``text`` (commas removed), or None when there is none."""
    found = _NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def is_correct_number(text: str, label: float | str, tolerance: float = 0.001) -> bool:
    """The release's math check: ``|label - prediction| <= 0.001``."""
    pred = extract_number(text)
    return pred is not None and abs(float(label) - pred) <= tolerance


def extract_letter(text: str, *, release: bool = False) -> str:
    """AQuA's option letter ("" when none): the first standalone A-E, or with ``release`` the
    first capital A-E anywhere, as ``evaluate.py`` does."""
    found = re.findall(r"A|B|C|D|E" if release else r"\b[A-E]\b", text.strip())
    return found[0] if found else ""


def extract_option(text: str, options: tuple[str, ...] | str) -> str:
    """The first option word in ``text`` ("" when none); ``options`` is a tuple of words or the
    name of a commonsense test set."""
    words = COMMONSENSE_OPTIONS[options] if isinstance(options, str) else options
    found = re.findall("|".join(re.escape(w) for w in words), text.strip())
    return found[0] if found else ""
