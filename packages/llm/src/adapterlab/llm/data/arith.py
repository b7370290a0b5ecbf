"""Embedded math task: arithmetic word problems in the Math10K format.

Each problem is drawn from a template (a scenario and one or two operations); the response walks
through the computation and ends "The answer is N." like Math10K's outputs, and ``answer`` is N.
The training and test templates are disjoint (different scenarios, wording and operation
orders), so a test score measures transfer of the skill, not recall of a template.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .alpaca import Example

__all__ = ["TEST_TEMPLATES", "TRAIN_TEMPLATES", "make_arith"]


@dataclass(frozen=True)
class Template:
    """A problem text with slots ``{a}``, ``{b}``, ``{c}``, the answer and the worked steps."""

    name: str
    text: str
    answer: Callable[[int, int, int], int]
    steps: str


TRAIN_TEMPLATES = [
    Template("apples", "Tom has {a} apples. He buys {b} more apples. How many apples does Tom have now?",
             lambda a, b, c: a + b, "Tom has {a} + {b} = {r} apples."),
    Template("marbles", "Sara had {a} marbles and gave {b} of them to her brother. How many marbles does Sara have left?",
             lambda a, b, c: a - b, "Sara has {a} - {b} = {r} marbles left."),
    Template("boxes", "There are {a} boxes with {b} pencils in each box. How many pencils are there in all?",
             lambda a, b, c: a * b, "There are {a} * {b} = {r} pencils."),
    Template("bus", "A bus has {a} passengers. At the first stop {b} people get on and {c} people get off. How many passengers are on the bus now?",
             lambda a, b, c: a + b - c, "The bus has {a} + {b} - {c} = {r} passengers."),
    Template("cookies", "A baker makes {a} trays of cookies with {b} cookies on each tray and sells {c} cookies. How many cookies are left?",
             lambda a, b, c: a * b - c, "The baker has {a} * {b} - {c} = {r} cookies left."),
]  # fmt: skip

TEST_TEMPLATES = [
    Template("stamps", "Maria collected {a} stamps in May and {b} stamps in June. What is the total number of stamps she collected?",
             lambda a, b, c: a + b, "Maria collected {a} + {b} = {r} stamps."),
    Template("library", "A library owned {a} books and lent out {b} books this week. How many books are still in the library?",
             lambda a, b, c: a - b, "The library has {a} - {b} = {r} books."),
    Template("garden", "A garden has {a} rows of tulips and every row holds {b} tulips. How many tulips grow in the garden?",
             lambda a, b, c: a * b, "The garden has {a} * {b} = {r} tulips."),
    Template("shelf", "A shop puts {a} cans on a shelf, sells {c} of them and then adds {b} new cans. How many cans are on the shelf?",
             lambda a, b, c: a + b - c, "The shelf has {a} + {b} - {c} = {r} cans."),
]  # fmt: skip


def _draw(t: Template, rng: random.Random) -> Example:
    while True:
        a, b, c = rng.randint(2, 20), rng.randint(2, 12), rng.randint(1, 9)
        r = t.answer(a, b, c)
        if r >= 0:
            break
    text = t.text.format(a=a, b=b, c=c)
    output = t.steps.format(a=a, b=b, c=c, r=r) + f" The answer is {r}."
    return Example(text, "", output, str(r), where=f"embedded:{t.name}")


def make_arith(n_train: int, n_test: int, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """``(train, test)`` problems: train from :data:`TRAIN_TEMPLATES`, test from
    :data:`TEST_TEMPLATES` (disjoint)."""
    rng = random.Random(seed)
    train = [_draw(TRAIN_TEMPLATES[i % len(TRAIN_TEMPLATES)], rng) for i in range(n_train)]
    test = [_draw(TEST_TEMPLATES[i % len(TEST_TEMPLATES)], rng) for i in range(n_test)]
    return train, test
