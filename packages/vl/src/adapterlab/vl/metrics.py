"""Task metrics: official VQA accuracy, SNLI-VE accuracy, BLEU-4 and CIDEr-D.

- VQA accuracy is LAVIS's ``vqa_eval.py`` (= the VQA API's ``vqaEval.py``) to the letter, see
  :func:`vqa_score`: the prediction is normalised (punctuation, number words -> digits,
  articles, contractions), the human answers get the punctuation step only when they disagree,
  and an answer scores min(#matching humans / 3, 1) averaged over the leave-one-out subsets.
- BLEU-4 and CIDEr-D come from ``pycocoevalcap`` (the COCO caption evaluation code), on
  captions tokenised as the official evaluation does: its ``PTBTokenizer`` (Stanford CoreNLP
  3.4.1, shipped in the package, run with Java; lower case, punctuation tokens removed). Without
  Java the fallback :func:`caption_tokens` is used, with a warning (it keeps clitics such as
  "man's" whole where PTB splits "man 's"; the README gives the measured difference).
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterable, Sequence

__all__ = [
    "CaptionTokenizerWarning",
    "bleu4",
    "caption_scores",
    "caption_tokens",
    "cider",
    "normalize_answer",
    "snli_ve_accuracy",
    "tokenize_captions",
    "vqa_accuracy",
    "vqa_score",
]

# from the official VQA evaluation (vqaEval.py)
_CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've",
    "y'all'dve": "y'all'd've", "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've",
    "youll": "you'll", "youre": "you're", "youve": "you've",
}  # fmt: skip
_NUMBERS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
_ARTICLES = {"a", "an", "the"}
_PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_PUNCT = [";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@",
          "`", ",", "?", "!"]  # fmt: skip


def _process_punctuation(text: str) -> str:
    out = text
    for p in _PUNCT:
        if (p + " " in text or " " + p in text) or re.search(_COMMA_STRIP, text) is not None:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_STRIP.sub("", out, re.UNICODE)


def _process_digit_article(text: str) -> str:
    words = []
    for word in text.lower().split():
        word = _NUMBERS.setdefault(word, word) if word in _NUMBERS else word
        if word not in _ARTICLES:
            words.append(word)
    return " ".join(_CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """The official VQA answer normalisation (whitespace, punctuation, digits, articles)."""
    answer = answer.replace("\n", " ").replace("\t", " ").strip()
    return _process_digit_article(_process_punctuation(answer))


def vqa_score(prediction: str, answers: Sequence[str]) -> float:
    """Accuracy of one predicted answer against the human answers (10 in VQAv2 / VizWiz).

    Exactly the loop of ``VQAEval.evaluate`` in salesforce/LAVIS
    ``lavis/common/vqa_tools/vqa_eval.py`` (the VQA evaluation LAVIS / BLIP-2 run; the same logic
    as GT-Vision-Lab/VQA ``PythonEvaluationTools/vqaEvaluation/vqaEval.py``):

    - the prediction: newlines / tabs -> spaces, stripped, then always normalised
      (punctuation, then digits / articles / contractions: :func:`normalize_answer`);
    - the human answers: compared as given when they all agree (``len(set(answers)) == 1``,
      no stripping or lower-casing); when they disagree, each gets the *punctuation* step only;
    - score = min(#other humans equal to the prediction / 3, 1), averaged over the subsets that
      leave one human out. (The script drops answer *dicts* equal to the left-out one; VQAv2's
      answers carry distinct ``answer_id`` s, so that is one human, as here.)

    So a prediction "ten" never matches humans who all wrote "ten" (it becomes "10"); "Yes"
    written by some humans only counts as "Yes". Both are the script's behaviour, kept.
    """
    if not answers:
        raise ValueError("a VQA question needs at least one human answer")
    pred = prediction.replace("\n", " ").replace("\t", " ").strip()
    pred = _process_digit_article(_process_punctuation(pred))
    gts = list(answers)
    if len(set(gts)) > 1:
        gts = [_process_punctuation(a) for a in gts]
    accs = []
    for i in range(len(gts)):
        matches = sum(1 for j, a in enumerate(gts) if j != i and a == pred)
        accs.append(min(1.0, matches / 3.0))
    return sum(accs) / len(accs)


def vqa_accuracy_by_type(
    predictions: Sequence[str], answers: Sequence[Sequence[str]], types: Sequence[str]
) -> dict[str, float]:
    """``vqa_accuracy`` and ``vqa_<type>`` for every type in ``types`` (one per question;
    empty strings are left out of the breakdown)."""
    out = {"vqa_accuracy": vqa_accuracy(predictions, answers)}
    for t in sorted({t for t in types if t}):
        rows = [i for i, u in enumerate(types) if u == t]
        out[f"vqa_{t}"] = vqa_accuracy([predictions[i] for i in rows], [answers[i] for i in rows])
    return out


def vqa_accuracy(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> float:
    """Mean :func:`vqa_score` over questions (0..1)."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions for {len(answers)} questions")
    if not predictions:
        return float("nan")
    return sum(vqa_score(p, a) for p, a in zip(predictions, answers)) / len(predictions)


def snli_ve_accuracy(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """Share of predictions equal to the gold label (entailment / neutral / contradiction)."""
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    if not labels:
        return float("nan")
    return sum(p.strip().lower() == y.strip().lower() for p, y in zip(predictions, labels)) / len(
        labels
    )


def caption_tokens(text: str) -> str:
    """Lower-cased words without punctuation, space-joined (the fallback without Java)."""
    return " ".join(re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower()))


class CaptionTokenizerWarning(UserWarning):
    """Captions are tokenised without the PTB tokenizer (no Java): scores differ slightly."""


def tokenize_captions(groups: Sequence[Sequence[str]], tokenizer: str = "auto") -> list[list[str]]:
    """Tokenise each group of captions: ``"ptb"`` (pycocoevalcap's PTBTokenizer, as the COCO
    evaluation; needs Java), ``"simple"`` (:func:`caption_tokens`), or ``"auto"`` (PTB when
    ``java`` is on the PATH, else simple with a :class:`CaptionTokenizerWarning`)."""
    if tokenizer == "auto":
        tokenizer = "ptb" if shutil.which("java") else "simple"
        if tokenizer == "simple":
            warnings.warn(
                "no Java on the PATH: captions are tokenised by lower-casing and dropping "
                "punctuation instead of pycocoevalcap's PTBTokenizer (BLEU / CIDEr differ "
                "slightly from the official evaluation; install a JRE)",
                CaptionTokenizerWarning,
                stacklevel=2,
            )
    if tokenizer == "simple":
        return [[caption_tokens(c) for c in g] for g in groups]
    if tokenizer != "ptb":
        raise ValueError(f"tokenizer must be auto, ptb or simple, got {tokenizer!r}")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # one line per caption; an empty caption must keep its line, so it is tokenised as "."
    # (a punctuation token the tokenizer then removes)
    data = {i: [{"caption": c if c.strip() else "."} for c in g] for i, g in enumerate(groups)}
    out = PTBTokenizer().tokenize(data)
    got = [out.get(i, []) for i in range(len(groups))]
    if [len(g) for g in got] != [len(g) for g in groups]:
        raise RuntimeError("PTBTokenizer returned a different number of captions (Java failed?)")
    return got


def _prepare(
    predictions: Sequence[str], references: Sequence[Iterable[str]], tokenizer: str = "auto"
) -> tuple[dict, dict]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} captions for {len(references)} reference sets")
    refs = [list(r) for r in references]
    if any(not r for r in refs):
        raise ValueError("every image needs at least one reference caption")
    tokens = tokenize_captions([[p] for p in predictions] + refs, tokenizer)
    n = len(predictions)
    res = {i: tokens[i] for i in range(n)}
    gts = {i: tokens[n + i] for i in range(n)}
    return gts, res


def bleu4(
    predictions: Sequence[str], references: Sequence[Iterable[str]], tokenizer: str = "auto"
) -> float:
    """Corpus BLEU-4 as the COCO caption evaluation computes it (0..1)."""
    from pycocoevalcap.bleu.bleu import Bleu

    gts, res = _prepare(predictions, references, tokenizer)
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(score[3])


def cider(
    predictions: Sequence[str], references: Sequence[Iterable[str]], tokenizer: str = "auto"
) -> float:
    """CIDEr-D as the COCO caption evaluation computes it (idf from the references; x10 scale
    as printed by the library, e.g. 1.287 for the paper's "128.7")."""
    from pycocoevalcap.cider.cider import Cider

    gts, res = _prepare(predictions, references, tokenizer)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def caption_scores(
    predictions: Sequence[str], references: Sequence[Iterable[str]], tokenizer: str = "auto"
) -> dict[str, float]:
    """``{"bleu4": ..., "cider": ...}`` (captions tokenised once, see :func:`tokenize_captions`)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    gts, res = _prepare(predictions, references, tokenizer)
    return {
        "bleu4": float(Bleu(4).compute_score(gts, res, verbose=0)[0][3]),
        "cider": float(Cider().compute_score(gts, res)[0]),
    }
