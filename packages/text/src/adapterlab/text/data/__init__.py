"""WordNet text: fetch, parse, render, split."""

from .corpus import Corpora, MLMDataset, TopicDataset, build_corpora, mask_tokens
from .wordnet import (
    LEXNAMES,
    RELATION_TEMPLATES,
    Synset,
    WordNetUnavailable,
    fetch_wordnet_base,
    gloss_texts,
    kg_sentences,
    parse_data_noun,
)

__all__ = [
    "LEXNAMES",
    "RELATION_TEMPLATES",
    "Corpora",
    "MLMDataset",
    "Synset",
    "TopicDataset",
    "WordNetUnavailable",
    "build_corpora",
    "fetch_wordnet_base",
    "gloss_texts",
    "kg_sentences",
    "mask_tokens",
    "parse_data_noun",
]
