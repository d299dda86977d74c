"""A small vision transformer for the shapes data: torchvision's `VisionTransformer`, patch 8 at 64 px.

The same module classes as torchvision's `vit_b_16` (a class token, pre-norm encoder blocks with
`nn.MultiheadAttention`), so one code path explains both. The shipped `shapes-vit` is a hybrid
(Dosovitskiy et al. 2021, §3.1 "Hybrid architecture"): its patch embedding is the shapes CNN's feature
extractor, whose 8x8 output at 64 px is the token grid (one token per 8x8-pixel patch), and a 1x1
projection to the transformer's width; the trainer starts that extractor from the trained `shapes-cnn`.
"""

from __future__ import annotations

from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from demos.shapes import LABELS, ShapesCNN

PATCH = 8
IMAGE_SIZE = 64
BACKBONE = "conv_proj.0"  # a hybrid's CNN feature extractor (the shapes CNN's `features`)


def build_model(num_classes: int = len(LABELS), num_layers: int = 4, num_heads: int = 4, hidden_dim: int = 64,
                mlp_dim: int = 128, image_size: int = IMAGE_SIZE, patch_size: int = PATCH,
                hybrid: bool = False) -> VisionTransformer:
    """The shapes ViT: input [B, 3, 64, 64] normalised like `demos.shapes`, output logits.

    hybrid: the patch projection is the shapes CNN's features (stride 8: patch_size must be 8) and a 1x1
    convolution, in place of one strided convolution.
    """
    model = VisionTransformer(image_size=image_size, patch_size=patch_size, num_layers=num_layers,
                              num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, num_classes=num_classes)
    if hybrid:
        if patch_size != PATCH:
            raise ValueError(f"a hybrid's CNN has stride {PATCH}: patch_size must be {PATCH}")
        cnn = ShapesCNN(num_classes)
        model.conv_proj = nn.Sequential(cnn.features, nn.Conv2d(cnn.head.in_features, hidden_dim, 1))
    return model


def cam_layer(num_layers: int = 4) -> str:
    """The CAM layer of a torchvision ViT: the last block's first layer norm (its tokens still vary; the
    last block's output reaches the head only through the class token)."""
    return f"encoder.layers.encoder_layer_{num_layers - 1}.ln_1"
