"""A small transformer encoder classifier over word tokens (the sentiment demo's second model).

A learned class token is prepended to the word embeddings (the model adds it: the tokenizer's tokens are
the words), positions are learned, the pad token is masked out of every attention, and the head reads the
class token. Pre-norm blocks with `nn.MultiheadAttention`, like torchvision's ViT.
"""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """Pre-norm self-attention and MLP, each with a residual."""

    def __init__(self, dim: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        h, _ = self.self_attention(h, h, h, key_padding_mask=padding, need_weights=False)
        x = x + h
        return x + self.mlp(self.ln_2(x))


class TextTransformer(nn.Module):
    """Token ids [B, L] (L <= max_length) -> logits [B, num_classes]."""

    def __init__(self, vocab_size: int, num_classes: int = 2, embed_dim: int = 32, num_layers: int = 2,
                 num_heads: int = 4, mlp_dim: int = 64, max_length: int = 64, pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.class_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, max_length + 1, embed_dim) * 0.02)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_dim) for _ in range(num_layers)])
        self.ln = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, length = ids.shape
        x = torch.cat([self.class_token.expand(b, -1, -1), self.embedding(ids)], dim=1)
        x = x + self.pos_embedding[:, :length + 1]
        pad = ids == self.pad_id
        padding = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)  # the class token is never padding
        for block in self.blocks:
            x = block(x, padding)
        return self.head(self.ln(x[:, 0]))


def build_model(vocab_size: int, num_classes: int = 2, embed_dim: int = 32, num_layers: int = 2,
                num_heads: int = 4, mlp_dim: int = 64, max_length: int = 64) -> TextTransformer:
    """The sentiment transformer; the vocabulary's first token is the pad token."""
    return TextTransformer(vocab_size, num_classes, embed_dim, num_layers, num_heads, mlp_dim, max_length)
