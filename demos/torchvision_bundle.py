"""Bundles of torchvision architectures with seeded random weights (for benchmarks and tests)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.vision_transformer import VisionTransformer

from demos.train import WEIGHTS_NAME
from explainers.models.manifest import MANIFEST_NAME, read_manifest

log = logging.getLogger(__name__)

IMAGENET_MEAN: list[float] = [0.485, 0.456, 0.406]
IMAGENET_STD: list[float] = [0.229, 0.224, 0.225]
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

# Architecture-name prefix -> module whose output is the last convolutional feature map.
_CAM_LAYERS: list[tuple[str, str | None]] = [
    ("resnet", "layer4"), ("resnext", "layer4"), ("wide_resnet", "layer4"),
    ("regnet", "trunk_output"), ("shufflenet", "conv5"), ("googlenet", "inception5b"),
    ("inception", "Mixed_7c"), ("mnasnet", "layers"),
    ("vgg", "features"), ("alexnet", "features"), ("densenet", "features"), ("mobilenet", "features"),
    ("efficientnet", "features"), ("convnext", "features"), ("squeezenet", "features"),
    ("swin", None), ("maxvit", None),  # no [B, C, H, W] feature map to use
]


def cam_layer_for(arch: str, model: nn.Module) -> str | None:
    """The default Grad-CAM layer of a torchvision model: a known name, a ViT's last block's first layer norm
    (its tokens go on the patch grid), else the last top-level child holding a Conv2d, else None."""
    if isinstance(model, VisionTransformer):
        return f"encoder.layers.encoder_layer_{len(model.encoder.layers) - 1}.ln_1"
    names = dict(model.named_modules())
    for prefix, layer in _CAM_LAYERS:
        if arch.startswith(prefix):
            return layer if layer is None or layer in names else None
    last: str | None = None
    for name, child in model.named_children():
        if any(isinstance(m, nn.Conv2d) for m in child.modules()):
            last = name
    return last


# Segmentation architectures: their default CAM layer (the backbone's last feature map); they return a dict
SEGMENTATION_CAM_LAYERS: dict[str, str] = {"fcn_resnet50": "backbone.layer4", "fcn_resnet101": "backbone.layer4",
                                           "deeplabv3_resnet50": "backbone.layer4",
                                           "lraspp_mobilenet_v3_large": "backbone.16"}


def _state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def make_bundle(arch: str, out: Path, size: int = 224, num_classes: int = 1000, seed: int = 0,
                model_id: str | None = None) -> Path:
    """Write a bundle for torchvision `arch` with seeded random weights into `out`; returns `out`.

    The manifest id is `model_id`, else the folder name when it is a valid id, else `arch`.
    The global torch RNG is left as it was.
    """
    out = Path(out)
    segmentation = arch in SEGMENTATION_CAM_LAYERS
    kwargs: dict[str, int | None] = {"num_classes": num_classes, **({"weights_backbone": None} if segmentation else {})}
    if arch.startswith("vit_"):
        kwargs["image_size"] = size  # a ViT's position embedding is built for its input size
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    save_file(_state_dict(model), str(out / WEIGHTS_NAME))
    manifest = {
        "id": model_id or (out.name if _ID.match(out.name) else arch),
        "modality": "image",
        "architecture": arch,
        "architecture_kwargs": kwargs,
        "weights": WEIGHTS_NAME,
        "labels": [f"class_{i}" for i in range(num_classes)],
        "output": "logits",
        "description": f"torchvision {arch} with random weights (seed {seed}); for benchmarks and tests only",
        "cam_layer": SEGMENTATION_CAM_LAYERS[arch] if segmentation else cam_layer_for(arch, model),
        **({"task": "segmentation", "output_key": "out"} if segmentation else {}),
        "image": {"size": [size, size], "mean": IMAGENET_MEAN, "std": IMAGENET_STD, "channel_order": "RGB"},
    }
    if isinstance(model, VisionTransformer):
        manifest["transformer"] = {"prefix_tokens": 1, "patch_size": [model.patch_size, model.patch_size]}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    read_manifest(out)
    log.info("wrote %s bundle to %s", arch, out)
    return out
