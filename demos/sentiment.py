"""Synthetic review sentiment: a seeded template corpus, its vocabulary and a small 1-D CNN.

Every review states one polarity through lexicon words (`POSITIVE_WORDS`,
`NEGATIVE_WORDS`) among neutral filler; a minority negate the statement
("not very good" is negative). `sentiment_mask` marks the lexicon words, which
makes the corpus usable as ground truth for token attributions (negators and
intensifiers are not marked).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explainers.models.tokenizer import split_words

LABELS: list[str] = ["negative", "positive"]
PAD, UNK = "<pad>", "<unk>"
POSITIVE_WORDS: list[str] = [
    "good", "great", "excellent", "amazing", "wonderful", "fantastic", "superb", "lovely",
    "brilliant", "delightful", "enjoyable", "perfect", "impressive", "pleasant", "charming",
]
NEGATIVE_WORDS: list[str] = [
    "bad", "terrible", "awful", "horrible", "poor", "disappointing", "boring", "dreadful",
    "mediocre", "useless", "annoying", "flimsy", "bland", "clumsy", "tedious",
]
NEGATION_RATE = 0.15

_SUBJECTS = ["movie", "film", "book", "phone", "camera", "laptop", "blender", "headphones", "game",
             "series", "novel", "keyboard", "jacket", "hotel", "restaurant", "album", "show", "chair"]
_OPENERS = ["", "", "honestly ,", "overall ,", "to be fair ,", "well ,", "so far", "after two weeks ,",
            "i have to say", "in short ,", "for what it is worth ,"]
_CLOSERS = ["", "", "for the price", "in my opinion", "to be honest", "if you ask me", "compared to the last one",
            "all things considered", "from start to finish", "as far as i can tell"]
_INTENSIFIERS = ["", "", "", "very", "really", "quite", "pretty", "truly", "rather", "so"]
_VERBS = ["is", "was", "seems", "felt", "looks"]
_NEUTRAL = ["i bought it last month .", "we watched it on friday night .", "the box arrived on time .",
            "it comes in three colours .", "my brother recommended it .", "i used it every day at work .",
            "the delivery took four days .", "we went there with friends .", "it was a gift for my sister .",
            "i read it on the train ."]
_LEXICON = frozenset(POSITIVE_WORDS) | frozenset(NEGATIVE_WORDS)


@dataclass
class SentimentExample:
    """A review, its label (0 negative, 1 positive) and which `split_words` tokens carry sentiment."""

    text: str
    label: int
    sentiment_mask: list[bool]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _clause(rng: np.random.Generator, polarity: int, negate: bool) -> str:
    """`the <subject> <verb> [not] [intensifier] <word> [and <word>]` with the given surface polarity."""
    words = POSITIVE_WORDS if polarity == 1 else NEGATIVE_WORDS
    core = f"{_pick(rng, _INTENSIFIERS)} {_pick(rng, words)}"
    if not negate and rng.random() < 0.3:
        core += f" and {_pick(rng, _INTENSIFIERS)} {_pick(rng, words)}"
    negator = "not" if negate else ""
    subject = f"{_pick(rng, ['the', 'this', 'my'])} {_pick(rng, _SUBJECTS)}"
    return f"{_pick(rng, _OPENERS)} {subject} {_pick(rng, _VERBS)} {negator} {core} {_pick(rng, _CLOSERS)} ."


def _detokenize(text: str) -> str:
    text = " ".join(text.split())
    return text.replace(" ,", ",").replace(" .", ".")


def generate(n: int, seed: int) -> list[SentimentExample]:
    """`n` reviews, balanced over the labels, from a seeded generator."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    out: list[SentimentExample] = []
    for label in labels:
        negate = bool(rng.random() < NEGATION_RATE)
        parts = [_clause(rng, int(label) ^ int(negate), negate)]
        for _ in range(int(rng.integers(0, 3))):
            pos = int(rng.integers(0, len(parts) + 1))
            parts.insert(pos, _pick(rng, _NEUTRAL))
        text = _detokenize(" ".join(parts))
        out.append(SentimentExample(text, int(label), [t in _LEXICON for t in split_words(text)]))
    return out


def build_vocab(examples: Sequence[SentimentExample]) -> list[str]:
    """`<pad>`, `<unk>`, then every token of the examples in sorted order."""
    tokens = {t for ex in examples for t in split_words(ex.text)}
    return [PAD, UNK, *sorted(tokens - {PAD, UNK})]


def encode(examples: Sequence[SentimentExample], vocab: Sequence[str], max_length: int = 64) -> torch.Tensor:
    """Token ids [n, L] (unknown words to `<unk>`), right-padded with the pad id 0."""
    index = {tok: i for i, tok in enumerate(vocab)}
    rows = [[index.get(t, 1) for t in split_words(ex.text)[:max_length]] for ex in examples]
    ids = torch.zeros(len(rows), max(1, max(map(len, rows), default=1)), dtype=torch.int64)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row, dtype=torch.int64)
    return ids


class SentimentCNN(nn.Module):
    """Embedding, a kernel-3 convolution with ReLU, max pooling over non-pad positions, a linear head.

    Pad positions (id 0) are zeroed after the ReLU, so right-padding a batch does not change a
    row's logits, and replacing a token by `<pad>` removes it.
    """

    def __init__(self, vocab_size: int, embed_dim: int = 32, num_classes: int = 2, channels: int = 64) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.conv = nn.Conv1d(embed_dim, channels, kernel_size=3, padding=1)
        self.relu = nn.ReLU(inplace=False)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # The convolution is zero-padded, so any length >= 1 works; the embedding's output may be
        # replaced by a hook (embedding attributions), so everything after it keys off `ids` only.
        emb = self.embedding(ids).transpose(1, 2)  # [B, E, L]
        h = self.relu(self.conv(emb)) * (ids != 0).unsqueeze(1).to(emb.dtype)
        return self.head(h.amax(dim=2))


def build_model(vocab_size: int, embed_dim: int = 32, num_classes: int = 2) -> nn.Module:
    """The sentiment classifier: int64 ids [B, L] (pad id 0) to logits [B, num_classes]."""
    return SentimentCNN(vocab_size, embed_dim, num_classes)
