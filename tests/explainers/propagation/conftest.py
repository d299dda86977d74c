"""Models for the propagation tests: torchvision architectures with random weights, bias-free networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explainers.methods import all_methods, get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from explainers.result import Explanation

ARCHS = ["resnet18", "resnet50", "vgg16", "densenet121"]
PROPAGATION = sorted(n for n, c in all_methods().items() if c.__module__.rsplit(".", 1)[-1] in (
    "lrp", "deep_taylor", "excitation_backprop", "deeplift", "patternnet", "pattern_attribution"))


@pytest.fixture(scope="session")
def arch_registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    """The four architectures the engine must handle, at 64 px with 10 classes (random weights, seeded)."""
    from demos.torchvision_bundle import make_bundle

    root = tmp_path_factory.mktemp("archs")
    for arch in ARCHS:
        make_bundle(arch, root / arch, size=64, num_classes=10, seed=0)
    return ModelRegistry(root, device="cpu", state_dir=tmp_path_factory.mktemp("arch-state"))


def explain(name: str, model: LocalModel, raw: RawInput, **params: object) -> Explanation:
    cls = get_method(name)
    return cls().explain(model, raw, parse_params(cls.Params, params))


def hooks_on(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
               for m in module.modules())


class BiasFree(nn.Module):
    """Every construct the canonizer rewrites, with no bias anywhere (BatchNorm with zero mean and shift).

    conv-BN-ReLU, a residual `out += identity`, max pooling, a functional ReLU, a concatenation,
    average pooling, flatten and two dense layers.
    """

    def __init__(self, channels: int = 6, classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.side = nn.Conv2d(channels, 2, 1, bias=False)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear((channels + 2) * 4, 8, bias=False)
        self.fc2 = nn.Linear(8, classes, bias=False)
        gen = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
            self.bn1.weight.abs_().add_(0.5)
            self.bn1.bias.zero_()
            self.bn1.running_var.uniform_(0.5, 2.0, generator=gen)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        identity = out
        out = self.conv2(out)
        out += identity
        out = torch.nn.functional.relu(self.pool(out))
        out = torch.cat([out, self.relu(self.side(out))], dim=1)
        return self.fc2(self.relu(self.fc1(torch.flatten(self.avg(out), 1))))
