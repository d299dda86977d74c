"""The word tokenizer used by text bundles (`"tokenizer": "words"`)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-case word tokens (with an apostrophe suffix) and single punctuation marks."""
    return _TOKEN.findall(text.lower())


class WordTokenizer:
    """Maps text to ids over a fixed vocabulary; unknown words map to the unk id."""

    def __init__(self, vocab: Sequence[str], *, pad_token: str = "<pad>", unk_token: str = "<unk>",
                 max_length: int = 128) -> None:
        if pad_token not in vocab or unk_token not in vocab:
            raise ValueError("the vocabulary must contain the pad and unk tokens")
        self.vocab = list(vocab)
        self.index = {tok: i for i, tok in enumerate(self.vocab)}
        if len(self.index) != len(self.vocab):
            raise ValueError("the vocabulary has duplicate tokens")
        self.pad_id = self.index[pad_token]
        self.unk_id = self.index[unk_token]
        self.max_length = max_length

    def tokenize(self, text: str) -> list[str]:
        return split_words(text)[: self.max_length]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        return [self.index.get(t, self.unk_id) for t in tokens]

    def unknown(self, tokens: Sequence[str]) -> list[int]:
        """Positions of the tokens outside the vocabulary (`encode` maps them to the unk id)."""
        return [i for i, t in enumerate(tokens) if t not in self.index]
