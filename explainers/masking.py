"""How features are hidden: one module for every perturbation method.

A masker turns binary masks over interpretable features (superpixels, tokens,
tabular features) into the model's own inputs; `value` evaluates the explained
class's probability for each mask in batches, composing each batch only when it
is needed (a RISE run over thousands of masks never holds them all as images).
Images also take soft pixel masks (occlusion windows, RISE).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from explainers.context import BudgetExhausted, Context
from explainers.errors import InvalidParams
from explainers.models.manifest import Manifest
from explainers.params import BlackBoxParams
from explainers.types import Modality

Segmentation = Literal["slic", "quickshift", "felzenszwalb", "grid", "patches"]
ImageFill = Literal["mean", "black", "white", "zero", "blur"]
TokenFill = Literal["pad", "unk"]


class Masker:
    """Binary masks [N, M] over M features (True = keep the input's value) -> model inputs."""

    n_features: int
    names: list[str]
    rows_per_mask: int = 1

    def compose(self, masks: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def to_map(self, values: np.ndarray) -> np.ndarray | torch.Tensor:
        """Per-feature values [M] -> the attribution's own shape (pixels for images)."""
        return values

    warning: str | None = None  # why the features are fewer than asked (a segmentation that found few)

    def value(self, ctx: Context, masks: np.ndarray, batch_size: int, *, done: float = 0.0,
              share: float = 1.0, partial: bool = False, kind: str | None = None) -> np.ndarray:
        """The explained class's score for each mask [N] (averaged over background rows).

        partial: when the request's budget runs out, return the scores of the masks evaluated so far
        (a prefix, possibly empty: the caller decides) and set `ctx.stopped`. `kind`: see `Context.predict`.
        """
        n = len(masks)
        per_call = max(1, batch_size // self.rows_per_mask)
        out = np.empty(n, dtype=np.float64)
        for start in range(0, n, per_call):
            chunk = masks[start:start + (ctx.room(per_call, self.rows_per_mask) if partial else per_call)]
            try:
                if not len(chunk):
                    raise BudgetExhausted("evaluations")
                scores = ctx.target_probabilities(self.compose(chunk), batch_size, kind=kind,
                                                  done=done + share * start / n, share=share * len(chunk) / n)
            except BudgetExhausted:
                if not partial:
                    raise
                ctx.stopped = "budget"
                return out[:start]
            out[start:start + len(chunk)] = scores.view(len(chunk), self.rows_per_mask).mean(1).double().cpu().numpy()
            if len(chunk) < min(per_call, n - start):  # the budget's last room: stop after this chunk
                ctx.stopped = "budget"
                return out[:start + len(chunk)]
        return out


def model_sized_rgb(ctx: Context) -> np.ndarray:
    """The request image resized to the model's input size (RGB uint8)."""
    spec = ctx.model.manifest.image
    assert spec is not None and ctx.inputs.image is not None
    height, width = spec.size
    img = Image.fromarray(ctx.inputs.image)
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(img)


def segment(rgb: np.ndarray, method: Segmentation, n_segments: int, seed: int = 0) -> np.ndarray:
    """Superpixel labels [H, W] numbered 0..n-1 (scikit-image; `grid` is a plain square grid)."""
    from skimage import segmentation as seg

    height, width = rgb.shape[:2]
    if method == "slic":  # compactness 20 and small regions kept: the count follows n_segments at any image size
        labels = seg.slic(rgb, n_segments=n_segments, compactness=20, start_label=0, min_size_factor=0.2)
    elif method == "quickshift":
        labels = seg.quickshift(rgb, kernel_size=4, max_dist=200, ratio=0.2, rng=seed)
    elif method == "felzenszwalb":
        labels = seg.felzenszwalb(rgb, scale=max(1.0, height * width / max(n_segments, 1) / 4), sigma=0.8,
                                  min_size=max(4, height * width // (4 * max(n_segments, 1))))
    else:
        side = max(1, int(round(np.sqrt(height * width / max(n_segments, 1)))))
        rows, cols = np.arange(height)[:, None] // side, np.arange(width)[None, :] // side
        labels = rows * ((width + side - 1) // side) + cols
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(height, width).astype(np.int64)


def patch_labels(manifest: Manifest) -> np.ndarray:
    """A vision transformer's patches as segment labels [H, W] of the model-sized input, row by row; a 422
    `no_patch_grid` for a model without one."""
    grid = manifest.patch_grid
    if grid is None or manifest.image is None:
        raise InvalidParams(f"segmentation 'patches' needs a vision transformer; model {manifest.id!r} declares no "
                            "transformer.patch_size", code="no_patch_grid")
    (height, width), (rows, cols) = manifest.image.size, grid
    r = np.arange(height)[:, None] // (height // rows)
    c = np.arange(width)[None, :] // (width // cols)
    return (r * cols + c).astype(np.int64)


class ImageSegments(Masker):
    """Superpixels of the model-sized image; a hidden superpixel takes the fill's pixels."""

    def __init__(self, ctx: Context, labels: np.ndarray, fill: ImageFill) -> None:
        self.x = ctx.x
        self.labels = torch.from_numpy(labels).to(ctx.x.device)
        self.n_features = int(labels.max()) + 1
        self.names = [f"superpixel {i}" for i in range(self.n_features)]
        if fill == "mean":
            flat = ctx.x[0].flatten(1)  # [C, H*W]
            sums = torch.zeros(flat.shape[0], self.n_features, device=flat.device).index_add_(
                1, self.labels.flatten(), flat)
            counts = torch.bincount(self.labels.flatten(), minlength=self.n_features).clamp(min=1)
            self.fill = (sums / counts)[:, self.labels][None]
        else:
            self.fill = ctx.inputs.baseline(fill)

    def compose(self, masks: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(np.asarray(masks, dtype=np.float32)).to(self.x.device)[:, self.labels]
        return compose_pixels(self.x, self.fill, keep[:, None])

    def to_map(self, values: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).to(self.labels.device)[self.labels]


def compose_pixels(x: torch.Tensor, fill: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Soft pixel masks [N, 1, H, W] in [0, 1]: 1 keeps the input, 0 shows the fill."""
    return fill + keep * (x - fill)


PixelFill = Literal["zero", "black", "white", "blur", "mean"]
FILL_HELP = ("what hidden pixels show: zero (the dataset mean colour, 0 after normalisation), black, white, "
             "blur (a blurred copy of the image) or mean (the image's own per-channel mean)")


def pixel_fill(ctx: Context, fill: PixelFill) -> torch.Tensor:
    """The replacement image [1, C, H, W] for hidden pixels of the model-sized input."""
    if fill == "mean":
        return ctx.x.mean(dim=(2, 3), keepdim=True).expand_as(ctx.x)
    return ctx.inputs.baseline(fill)


class Tokens(Masker):
    """Tokens; a hidden token becomes the pad (or unk) token, keeping positions."""

    def __init__(self, ctx: Context, fill: TokenFill) -> None:
        tokenizer = ctx.model.tokenizer
        assert tokenizer is not None and ctx.inputs.native is not None
        self.ids = ctx.inputs.native
        self.fill_id = tokenizer.pad_id if fill == "pad" else tokenizer.unk_id
        self.names = list(ctx.inputs.tokens)
        self.n_features = len(self.names)

    def compose(self, masks: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(np.asarray(masks, dtype=bool)).to(self.ids.device)
        return torch.where(keep, self.ids, torch.full_like(self.ids, self.fill_id))


class TabularFeatures(Masker):
    """Features; a hidden feature takes background values, averaged over background rows."""

    def __init__(self, ctx: Context, n_background: int, seed: int) -> None:
        background = ctx.model.background
        assert background is not None
        rng = np.random.default_rng(seed)
        self.whole = len(background) <= n_background
        if not self.whole:
            background = background[np.sort(rng.choice(len(background), n_background, replace=False))]
        self.background = torch.from_numpy(background).to(ctx.x.device)
        self.x = ctx.x
        self.names = ctx.model.feature_names
        self.n_features = len(self.names)
        self.rows_per_mask = len(background)

    def compose(self, masks: np.ndarray) -> torch.Tensor:
        keep = torch.from_numpy(np.asarray(masks, dtype=bool)).to(self.x.device)  # [N, F]
        out = torch.where(keep[:, None, :], self.x[None], self.background[None])  # [N, R, F]
        return out.reshape(-1, self.n_features)


class FeatureMaskParams(BlackBoxParams):
    """How features are defined and hidden, per modality (fields of other modalities are ignored)."""

    segmentation: Segmentation = Field("slic", description="image: superpixel algorithm (scikit-image), a grid, "
                                       "or `patches`: a vision transformer's own patches (n_segments is ignored)")
    n_segments: int = Field(50, ge=2, le=2000, description="image: about how many superpixels")
    fill: ImageFill = Field("mean", description="image: what a hidden superpixel shows (mean: its own mean colour)")
    mask_token: TokenFill = Field("pad", description="text: the token that replaces a hidden token")
    n_background: int | None = Field(
        None, ge=1, le=1000, description="tabular: background rows a hidden feature is drawn from (a seeded "
        "subsample); null: the whole background sample, up to 1000 rows")


def feature_masker(ctx: Context, p: FeatureMaskParams) -> Masker:
    """The masker for the request's modality."""
    modality = ctx.model.modality
    if modality is Modality.IMAGE and p.segmentation == "patches":
        return ImageSegments(ctx, patch_labels(ctx.model.manifest), p.fill)
    if modality is Modality.IMAGE:
        rgb = model_sized_rgb(ctx)
        labels = segment(rgb, p.segmentation, p.n_segments, p.seed)
        found = int(labels.max()) + 1
        warning = None
        if found < min(FEW_FEATURES, p.n_segments):  # a segmentation that found (almost) nothing: a grid instead
            warning = f"{p.segmentation} found {found} superpixel(s) for {p.n_segments} asked: a grid was used"
            labels = segment(rgb, "grid", p.n_segments, p.seed)
        masker = ImageSegments(ctx, labels, p.fill)
        masker.warning = warning
        return masker
    if modality is Modality.TEXT:
        return Tokens(ctx, p.mask_token)
    return TabularFeatures(ctx, p.n_background or MAX_BACKGROUND, p.seed)


FEW_FEATURES = 8  # below this many features, an explanation says it explained few
MAX_BACKGROUND = 1000


def feature_details(masker: Masker) -> dict[str, object]:
    """What every masking method reports of its features: how many, and a warning where they are few."""
    out: dict[str, object] = {"n_features": masker.n_features}
    if masker.warning:
        out["warning"] = masker.warning
    elif masker.n_features < FEW_FEATURES:
        out["warning"] = f"only {masker.n_features} feature(s) were explained"
    if isinstance(masker, TabularFeatures):
        out["background_rows"] = masker.rows_per_mask
        out["background"] = "all" if masker.whole else "a seeded subsample"
    return out
