"""Occlusion: hide one window of the input at a time, record the drop in the target's probability."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from pydantic import Field, model_validator

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.masking import FILL_HELP, PixelFill, TabularFeatures, compose_pixels, pixel_fill
from explainers.methods._perturbation import ALL_MODALITIES, PerturbationExplainer
from explainers.params import BlackBoxParams
from explainers.registry import register
from explainers.types import Modality


def windows(size: int, window: int, stride: int, *, clip: bool, device: torch.device) -> torch.Tensor:
    """Which positions [n, size] each window covers; starts at k * stride.

    `clip` cuts the last window at the edge (Captum's placement); otherwise it is moved back to fit.
    """
    n = -(-(size - window) // stride) + 1
    starts = torch.arange(n, device=device) * stride
    if not clip:
        starts = starts.clamp(max=size - window)
    idx = torch.arange(size, device=device)
    return (idx >= starts[:, None]) & (idx < starts[:, None] + window)


class OcclusionParams(BlackBoxParams):
    window: int = Field(16, ge=1, le=1024, description="image: side of the square occluding window, px of the "
                                                       "model-sized input (cut to the image size)")
    stride: int = Field(8, ge=1, le=1024, description="image: step between window positions, px (at most window)")
    baseline: PixelFill = Field("zero", description="image: " + FILL_HELP)
    window_tokens: int = Field(1, ge=1, le=64, description="text: consecutive tokens deleted together")
    stride_tokens: int = Field(1, ge=1, le=64, description="text: step between token windows (at most window_tokens)")
    n_background: int = Field(50, ge=1, le=1000,
                              description="tabular: background rows (a seeded subsample) a replaced feature takes")

    @model_validator(mode="after")
    def _strides_within_windows(self) -> OcclusionParams:
        if self.stride > self.window or self.stride_tokens > self.window_tokens:
            raise ValueError("a stride larger than its window would leave inputs never occluded")
        return self


@register
class Occlusion(PerturbationExplainer[OcclusionParams]):
    """Occlusion (Zeiler & Fergus 2014). https://arxiv.org/abs/1311.2901"""

    name = "occlusion"
    contrastive = True
    modalities = ALL_MODALITIES
    Params = OcclusionParams

    def _attribute(self, ctx: Context, p: OcclusionParams) -> Attribution:
        if ctx.model.modality is Modality.IMAGE:
            return self._image(ctx, p)
        if ctx.model.modality is Modality.TEXT:
            return self._text(ctx, p)
        return self._tabular(ctx, p)

    @staticmethod
    def _drops(ctx: Context, n: int, make: Callable[[int, int], torch.Tensor], batch_size: int) -> torch.Tensor:
        """p(x) - p(perturbation k) for k < n; `make(a, b)` builds perturbations a..b-1 on demand.

        Where the budget runs out, the windows not evaluated are NaN (the map averages the others).
        """
        assert ctx.inputs.native is not None
        p0 = ctx.target_probabilities(ctx.inputs.native, 1, done=0.0, share=1 / (n + 1))
        out = torch.full((n,), float("nan"), device=p0.device)
        for a in range(0, n, batch_size):
            b = a + ctx.room(min(batch_size, n - a))
            try:
                if b == a:
                    raise BudgetExhausted("evaluations")
                out[a:b] = p0 - ctx.target_probabilities(make(a, b), batch_size, done=(a + 1) / (n + 1),
                                                          share=(b - a) / (n + 1))
            except BudgetExhausted:
                if a == 0:
                    raise
                ctx.stopped = "budget"
                break
            if b < min(n, a + batch_size):
                ctx.stopped = "budget"
                break
        return out

    def _image(self, ctx: Context, p: OcclusionParams) -> Attribution:
        x = ctx.x
        height, width = x.shape[-2:]
        wh, ww = min(p.window, height), min(p.window, width)
        rows = windows(height, wh, min(p.stride, wh), clip=True, device=x.device).float()  # [nh, H]
        cols = windows(width, ww, min(p.stride, ww), clip=True, device=x.device).float()  # [nw, W]
        fill = pixel_fill(ctx, p.baseline)
        n_cols = len(cols)

        def make(a: int, b: int) -> torch.Tensor:
            k = torch.arange(a, b, device=x.device)
            hidden = rows[k // n_cols][:, :, None] * cols[k % n_cols][:, None, :]  # [B, H, W]
            return compose_pixels(x, fill, (1 - hidden)[:, None])

        drops = self._drops(ctx, len(rows) * n_cols, make, ctx.batch_size).view(len(rows), n_cols)
        seen = (~drops.isnan()).float()
        total = rows.T @ drops.nan_to_num() @ cols  # each pixel: the sum over the (evaluated) windows covering it
        counts = rows.T @ seen @ cols
        return Attribution(total / counts.clamp(min=1), {
            "window": [wh, ww], "stride": [min(p.stride, wh), min(p.stride, ww)], "baseline": p.baseline,
            "n_windows": drops.numel(), "windows_evaluated": int(seen.sum())})

    def _text(self, ctx: Context, p: OcclusionParams) -> Attribution:
        ids = ctx.inputs.native
        assert ids is not None and ctx.model.tokenizer is not None
        length = ids.shape[1]
        if length == 1:  # deleting the only token leaves nothing to evaluate: replace it by padding
            padded = torch.full_like(ids, ctx.model.tokenizer.pad_id)
            drop = self._drops(ctx, 1, lambda a, b: padded, 1)
            return Attribution(drop, {"occlusion": "replaced by the pad token (single-token text)",
                                      "window": 1, "stride": 1})
        window = min(p.window_tokens, length - 1)
        stride = min(p.stride_tokens, window)
        cover = windows(length, window, stride, clip=False, device=ids.device)  # [n, L], `window` per row

        def make(a: int, b: int) -> torch.Tensor:
            return ids.expand(b - a, -1)[~cover[a:b]].view(b - a, length - window)

        drops = self._drops(ctx, len(cover), make, ctx.batch_size)
        weights = cover.float() * (~drops.isnan()).float()[:, None]
        values = (drops.nan_to_num() @ weights) / weights.sum(0).clamp(min=1)
        return Attribution(values, {"occlusion": "tokens deleted", "window": window, "stride": stride})

    def _tabular(self, ctx: Context, p: OcclusionParams) -> Attribution:
        masker = TabularFeatures(ctx, p.n_background, p.seed)
        n = masker.n_features
        share = 1 / (n * masker.rows_per_mask + 1)
        p0 = float(ctx.target_probabilities(ctx.x, 1, done=0.0, share=share)[0])
        replaced = masker.value(ctx, ~np.eye(n, dtype=bool), ctx.batch_size, done=share, share=1 - share,
                                partial=True)
        replaced = np.concatenate([replaced, np.full(n - len(replaced), p0)])  # features not reached: no drop
        return Attribution(p0 - replaced, {"occlusion": "one feature replaced by background values",
                                           "n_background": masker.rows_per_mask})
