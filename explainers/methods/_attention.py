"""What the attention methods share: the refusal of models without a transformer section, the attention
modules, the pure map computations (batched) and the token map of one input."""

from __future__ import annotations

from typing import Literal

import torch

from explainers.attention import AttentionRecord, attention_modules
from explainers.base import Context, Explainer
from explainers.errors import InvalidInput
from explainers.models.manifest import Manifest
from explainers.params import P
from explainers.token_grid import token_layout
from explainers.types import Modality, Requires

HeadFusion = Literal["mean", "max", "min"]


def fuse_heads(weights: torch.Tensor, how: HeadFusion) -> torch.Tensor:
    """Per-head weights [B, H, N, N] -> one matrix per input [B, N, N]."""
    if how == "mean":
        return weights.mean(1)
    return weights.amax(1) if how == "max" else weights.amin(1)


def discard_lowest(fused: torch.Tensor, ratio: float) -> torch.Tensor:
    """Zero the lowest `ratio` share of each matrix's entries [B, N, N], the class token's attention to
    itself excepted."""
    if ratio <= 0:
        return fused
    b, n, _ = fused.shape
    flat = fused.reshape(b, n * n).clone()
    k = int(n * n * ratio)
    lowest = flat.topk(k, dim=1, largest=False).indices
    keep_cls = flat[:, 0].clone()
    flat.scatter_(1, lowest, 0.0)
    flat[:, 0] = keep_cls
    return flat.view(b, n, n)


def rollout(weights: list[torch.Tensor], fusion: HeadFusion = "mean", discard_ratio: float = 0.0) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): each layer's fused attention with the residual added and
    rows renormalised, (A + I) / rowsum, multiplied from the first layer up -> [B, N, N]."""
    joint = None
    for w in weights:
        a = discard_lowest(fuse_heads(w.float(), fusion), discard_ratio)
        a = a + torch.eye(a.shape[-1], device=a.device, dtype=a.dtype)
        a = a / a.sum(-1, keepdim=True)
        joint = a if joint is None else a @ joint
    assert joint is not None
    return joint


def relevance(weights: list[torch.Tensor], gradients: list[torch.Tensor]) -> torch.Tensor:
    """Chefer, Gur & Wolf (ICCV 2021), self-attention rule: R = I, then for each layer in forward order
    R <- R + mean_h[(dS/dA * A)^+] R -> [B, N, N]."""
    n = weights[0].shape[-1]
    r = torch.eye(n, device=weights[0].device).expand(weights[0].shape[0], n, n)
    for a, g in zip(weights, gradients):
        cam = (g.float() * a.float()).clamp(min=0).mean(1)
        r = r + cam @ r
    return r


def attention_gradients(records: list[AttentionRecord], score: torch.Tensor) -> list[torch.Tensor]:
    """d score.sum() / d weights of every recorded call, from one backward pass."""
    outputs = [r.output for r in records]
    assert all(o is not None for o in outputs)
    grads = torch.autograd.grad(score.sum(), outputs)  # type: ignore[arg-type]
    return [r.weight_gradients(g) for r, g in zip(records, grads)]


class AttentionExplainer(Explainer[P]):
    """Base of the methods that read a transformer's attention."""

    modalities = frozenset({Modality.IMAGE, Modality.TEXT})
    requires = Requires.ACTIVATIONS
    signed = False

    @classmethod
    def refusal(cls, manifest: Manifest) -> str | None:
        if manifest.transformer is None and manifest.modality in cls.modalities:
            return (f"method {cls.name!r} reads a transformer's attention; model {manifest.id!r} declares no "
                    "'transformer' section (a CNN, an MLP, a model without attention)")
        return super().refusal(manifest)

    @staticmethod
    def modules(ctx: Context) -> list[torch.nn.MultiheadAttention]:
        spec = ctx.model.manifest.transformer
        return attention_modules(ctx.module, spec.attention if spec is not None else None)

    @staticmethod
    def token_map(ctx: Context, joint: torch.Tensor) -> torch.Tensor:
        """Row 0 of the one input's [1, N, N] matrix (what the class token gathered), without the prefix tokens, as
        the input's map: the patch grid [rows, columns] for images, one value per token for text."""
        n = joint.shape[-1]
        if ctx.model.modality is Modality.TEXT:
            prefix = ctx.model.manifest.transformer.prefix_tokens  # type: ignore[union-attr]
            if n - prefix != len(ctx.inputs.tokens):
                raise InvalidInput(f"the model saw {n - prefix} tokens after its {prefix} prefix token(s), the "
                                   f"tokenizer gave {len(ctx.inputs.tokens)}", code="token_mismatch")
            return joint[0, 0, prefix:]
        prefix, grid = token_layout(ctx.model.manifest, n)
        return joint[0, 0, prefix:].reshape(grid)
