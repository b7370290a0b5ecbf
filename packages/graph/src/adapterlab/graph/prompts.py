"""Prompt presets: the original's template (before the text) and question (after it) per dataset
(``prompt_config.py`` of hxttkl/GraphAdapter, verbatim), plus ours for WordNet and any dataset.
The prompt embedding is the state of the question's last token, the opening quote after
``Answer: "`` (the original's target position)."""

from __future__ import annotations

__all__ = ["PROMPTS", "resolve_prompt"]

PROMPTS: dict[str, tuple[str, str]] = {
    "arxiv": (
        "Here is a paper published on arXiv. The abstract reads as follows: \n\n",
        '.\n\nQuestion: Based on the abstract above, this paper is published on "___" subject '
        'on Arxiv.\nAnswer: "',
    ),
    "instagram": (
        "Here are an account on Instagram, and its personal profile reads: \n\n",
        '.\n\nQuestion: Based on the profile provided , this account is a "___" (answer in one '
        'word) account on Instagram.\nAnswer: "',
    ),
    "reddit": (
        "It is a user on Reddit, and his last 3 posts are: \n\n",
        '.\n\nQuestion: Based on the given posts, the style of this user is "___" (answer in '
        'one word).\nAnswer: "',
    ),
    # ours: short, for the 2-core budget of the embedded WordNet job
    "wordnet": ("WordNet noun: ", '.\nQuestion: which kind of thing is this?\nAnswer: "'),
    # ours: any other dataset
    "generic": (
        "Here is a text from a text-attributed graph:\n\n",
        '.\n\nQuestion: Which category does this text belong to?\nAnswer: "',
    ),
}


def resolve_prompt(
    preset: str, dataset_name: str, template: str | None = None, question: str | None = None
) -> tuple[str, str, str]:
    """(preset name, template, question): ``auto`` picks the preset named like the dataset
    (arxiv for ogbn-arxiv), else ``generic``; ``template``/``question`` override either part."""
    if preset == "auto":
        name = dataset_name.lower()
        preset = next((p for p in ("arxiv", "instagram", "reddit", "wordnet") if p in name),
                      "generic")  # fmt: skip
    if preset not in PROMPTS:
        raise ValueError(f"prompt preset must be auto or one of {sorted(PROMPTS)}, got {preset!r}")
    t, q = PROMPTS[preset]
    return preset, t if template is None else template, q if question is None else question
