"""How a transformer's tokens map onto the input: the prefix tokens (a class token) and the patch grid."""

from __future__ import annotations

import math

import torch

from explainers.errors import InvalidParams
from explainers.models.manifest import Manifest

MAX_PREFIX = 16


def token_layout(manifest: Manifest, n_tokens: int, prefix: int | None = None,
                 grid: tuple[int, int] | None = None) -> tuple[int, tuple[int, int]]:
    """(prefix tokens, (rows, columns)) of a layer's `n_tokens` tokens: the request's, else the manifest's,
    else inferred (the largest square grid, the rest prefix tokens). A 422 `invalid_reshape` where they do
    not add up to the token count."""
    spec = manifest.transformer
    prefix = prefix if prefix is not None else (spec.prefix_tokens if spec is not None else None)
    grid = grid or manifest.patch_grid
    if grid is None:
        side = math.isqrt(max(n_tokens - (prefix or 0), 0))
        grid = (side, side)
        if prefix is None:
            prefix = n_tokens - side * side
    if prefix is None:
        prefix = n_tokens - grid[0] * grid[1]
    if min(grid) < 1 or not 0 <= prefix <= MAX_PREFIX or prefix + grid[0] * grid[1] != n_tokens:
        raise InvalidParams(f"{n_tokens} tokens do not form {prefix} prefix token(s) and a {grid[0]}x{grid[1]} "
                            "grid: set params.prefix_tokens and params.grid to fit the layer",
                            code="invalid_reshape", details={"tokens": n_tokens, "prefix_tokens": prefix,
                                                             "grid": list(grid)})
    return prefix, grid


def tokens_to_grid(tokens: torch.Tensor, prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """Tokens [B, N, C] (batch first) -> feature maps [B, C, rows, columns], the prefix tokens dropped."""
    b, _, c = tokens.shape
    return tokens[:, prefix:].reshape(b, grid[0], grid[1], c).permute(0, 3, 1, 2)
