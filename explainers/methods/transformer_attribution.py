"""Transformer attribution: attention weighted by its gradient, accumulated over the layers."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch
from torch import nn

from explainers.attention import recorded_attention
from explainers.base import Attribution, Context
from explainers.batching import Stack, image_key
from explainers.methods._attention import AttentionExplainer, attention_gradients, relevance
from explainers.params import Params
from explainers.registry import register
from explainers.types import Requires


class TransformerAttributionParams(Params):
    """No knobs besides the score explained."""


@register
class TransformerAttribution(AttentionExplainer[TransformerAttributionParams]):
    """Transformer attribution (Chefer, Gur & Wolf, ICCV 2021). https://arxiv.org/abs/2103.15679

    Each layer's attention times its gradient for the target, positive part averaged over heads, added
    up through the layers; one forward and one backward pass (for several images, one for them all).
    """

    name = "transformer_attribution"
    requires = Requires.GRADIENTS
    Params = TransformerAttributionParams

    def _attribute(self, ctx: Context, p: TransformerAttributionParams) -> Attribution:
        x = ctx.x.detach().requires_grad_(True)  # the graph reaches every attention module through the input
        with torch.enable_grad():
            outputs, joint, layers = traced_relevance(ctx.forward, self.modules(ctx), x, ctx.score, ctx.observe)
        ctx.backward_passes += 1
        return self._map(ctx, joint, layers)

    def batch_key(self, ctx: Context, p: TransformerAttributionParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: TransformerAttributionParams) -> list[Attribution]:
        """Several images in one forward and one backward: each row's relevance for its own target."""
        stack = Stack(ctxs)
        owners = stack.every(1)
        x = stack.x.detach().requires_grad_(True)
        with torch.enable_grad():
            _, joint, layers = traced_relevance(lambda b: stack.forward(b, owners), self.modules(stack.first), x,
                                                lambda out: stack.score(out, owners), stack.observe)
        stack.backward(owners)
        return [self._map(ctx, joint[i:i + 1], layers) for i, ctx in enumerate(stack.ctxs)]

    def _map(self, ctx: Context, joint: torch.Tensor, layers: int) -> Attribution:
        low = self.token_map(ctx, joint)
        return Attribution(low, {"layers": layers, "tokens": int(joint.shape[-1]), "map_shape": list(low.shape)})


def traced_relevance(forward: Callable[[torch.Tensor], torch.Tensor], modules: list[nn.MultiheadAttention],
                     x: torch.Tensor, score: Callable[[torch.Tensor], torch.Tensor],
                     observe: Callable[[torch.Tensor], object] = lambda _o: None,
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """One forward of a batch x (requiring grad) with the attention recorded and one backward of `score`
    (outputs [B, K] -> [B]): the outputs, the relevance matrices [B, N, N] and the layers read."""
    with recorded_attention(modules, gradients=True) as records:
        outputs = forward(x)
        observe(outputs)
        grads = attention_gradients(records, score(outputs))
    return outputs.detach(), relevance([r.weights.detach() for r in records], grads), len(records)


def batched_relevance(module: nn.Module, modules: list[nn.MultiheadAttention], x: torch.Tensor,
                      targets: torch.Tensor) -> torch.Tensor:
    """The relevance matrices [B, N, N] of a batch of model inputs x [B, ...], each row for its own target
    logit (targets [B]): one forward and one backward pass for the whole batch."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        _, joint, _ = traced_relevance(module, modules, x, lambda out: out.gather(1, targets.view(-1, 1))[:, 0])
    return joint
