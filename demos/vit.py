"""A small vision transformer for the shapes data: torchvision's `VisionTransformer`, patch 8 at 64 px.

The same module classes as torchvision's `vit_b_16` (conv patch embedding, a class token, pre-norm
encoder blocks with `nn.MultiheadAttention`), so one code path explains both.
"""

from __future__ import annotations

import torch
from torchvision.models.vision_transformer import ConvStemConfig, VisionTransformer

from demos.shapes import LABELS

PATCH = 8
IMAGE_SIZE = 64


def build_model(num_classes: int = len(LABELS), num_layers: int = 4, num_heads: int = 4, hidden_dim: int = 64,
                mlp_dim: int = 128, image_size: int = IMAGE_SIZE, patch_size: int = PATCH,
                conv_stem: list[int] | None = None) -> VisionTransformer:
    """The shapes ViT: input [B, 3, 64, 64] normalised like `demos.shapes`, output logits.

    conv_stem: channels of stride-2 3x3 convolutions that replace the patch projection (Xiao et al. 2021,
    "Early convolutions help transformers see better"): as many as make the patch size (3 for 8 px).
    """
    stem = None if conv_stem is None else [ConvStemConfig(out_channels=c, kernel_size=3, stride=2) for c in conv_stem]
    return VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                             num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, num_classes=num_classes,
                             conv_stem_configs=stem)


def cam_layer(num_layers: int = 4) -> str:
    """The CAM layer of a torchvision ViT: the last block's first layer norm (its tokens still vary; the
    last block's output reaches the head only through the class token)."""
    return f"encoder.layers.encoder_layer_{num_layers - 1}.ln_1"


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and quarter turns of a batch [B, C, H, W]: a shape keeps its kind under each."""
    k = int(torch.randint(4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(2, 3))
    if bool(torch.randint(2, (1,), generator=generator)):
        x = x.flip(3)
    return x
