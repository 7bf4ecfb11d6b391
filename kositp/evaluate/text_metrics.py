"""Answer-against-reference scores for generated Korean text: exact match, character F1, ROUGE-L.

Word-level scorers fail on Korean: particles attach to words (서울이, 서울에서), so a correct
answer with another particle shares no word with the reference, and ``rouge-score``'s default
tokenizer drops every non-ASCII character (every Korean answer scores 0). Everything here works on
characters, as KorQuAD's official evaluation does:

- :func:`normalize_answer`: NFC, lower case, punctuation removed, whitespace collapsed (SQuAD's
  normalisation without the English articles);
- :func:`exact_match`: the normalised strings are equal;
- :func:`char_f1`: F1 of the normalised strings' characters as bags, spaces left out (KorQuAD 1.0);
- :func:`rouge_l`: ROUGE-L F1 over the normalised characters, spaces left out: the longest common
  subsequence rewards the reference's characters in its order, as ROUGE-L does with words.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", text)).strip()


def _chars(text: str) -> str:
    return normalize_answer(text).replace(" ", "")


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def _f1(overlap: int, predicted: int, expected: int) -> float:
    if predicted == 0 or expected == 0:
        return float(predicted == expected)
    if overlap == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / expected
    return 2 * precision * recall / (precision + recall)


def char_f1(prediction: str, reference: str) -> float:
    predicted, expected = _chars(prediction), _chars(reference)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    return _f1(overlap, len(predicted), len(expected))


def lcs_length(a: str, b: str) -> int:
    """Longest common subsequence of two strings, bit-parallel (Allison and Dix 1986; Hyyrö 2004):
    one big-integer step per character of ``b``, so long answers cost microseconds, not a table."""
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for index, char in enumerate(a):
        positions[char] = positions.get(char, 0) | (1 << index)
    mask = (1 << len(a)) - 1
    row = mask
    for char in b:
        matches = row & positions.get(char, 0)
        row = ((row + matches) | (row - matches)) & mask
    return len(a) - row.bit_count()


def rouge_l(prediction: str, reference: str) -> float:
    predicted, expected = _chars(prediction), _chars(reference)
    return _f1(lcs_length(predicted, expected), len(predicted), len(expected))
