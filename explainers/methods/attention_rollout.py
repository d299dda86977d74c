"""Attention rollout."""

from __future__ import annotations

import torch
from pydantic import Field

from explainers.attention import recorded_attention
from explainers.base import Attribution, Context
from explainers.methods._attention import AttentionExplainer, HeadFusion, rollout
from explainers.params import Params
from explainers.registry import register


class RolloutParams(Params):
    head_fusion: HeadFusion = Field("mean", description="how a layer's heads become one matrix: their mean, "
                                    "maximum or minimum")
    discard_ratio: float = Field(0.0, ge=0.0, le=0.99, description="share of each layer's lowest fused weights "
                                 "set to 0 before the rollout (the class token's attention to itself is kept)")


@register
class AttentionRollout(AttentionExplainer[RolloutParams]):
    """Attention rollout (Abnar & Zuidema 2020). https://arxiv.org/abs/2005.00928

    What the class token attends to, through every layer: class-agnostic (the target is reported only).
    """

    name = "attention_rollout"
    Params = RolloutParams

    def _attribute(self, ctx: Context, p: RolloutParams) -> Attribution:
        modules = self.modules(ctx)
        with torch.inference_mode(), recorded_attention(modules) as records:
            ctx.observe(ctx.forward(ctx.x))
        joint = rollout([r.weights for r in records], p.head_fusion, p.discard_ratio)
        low = self.token_map(ctx, joint)
        return Attribution(low, {"layers": len(records), "heads": int(records[0].weights.shape[1]),
                                 "tokens": int(joint.shape[-1]), "map_shape": list(low.shape),
                                 "class_agnostic": True})
