"""The propagation methods' time over a bare forward + backward, and over Zennit's (Captum's) for the same rules.

    python bench/propagation.py [--arch resnet50] [--size 224] [--rounds 5]

On a random-weight torchvision model, one input, measured in one run with the calls interleaved:
each method's `explain` (input preparation, canonized forward, modified backward, map) over a bare
forward + backward of the served model to the input (autograd, frozen weights: what saliency costs),
and, where a reference library has the same rules, over its time for them: Zennit's composites with
its ResNet canonizer, Zennit's excitation backprop, Captum's DeepLift. Targets: `lrp` at most 1.3x the
forward + backward, and no slower than Zennit. The patterns of PatternNet are computed first, from a
few random images, and not timed. For the service's numbers, use the worker's allocator settings:
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 (see ../shared/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import interleaved
from demos.torchvision_bundle import make_bundle
from explainers.methods import get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from explainers.pattern_store import compute_patterns, store_patterns

OURS: list[tuple[str, str, dict[str, object]]] = [  # (label, method, params)
    ("lrp epsilon_plus_flat (default)", "lrp", {}),
    ("lrp epsilon_gamma_box", "lrp", {"composite": "epsilon_gamma_box"}),
    ("lrp epsilon_alpha2_beta1", "lrp", {"composite": "epsilon_alpha2_beta1"}),
    ("lrp epsilon_plus", "lrp", {"composite": "epsilon_plus"}),
    ("lrp epsilon (every layer)", "lrp", {"composite": "epsilon"}),
    ("deep_taylor", "deep_taylor", {}),
    ("excitation_backprop", "excitation_backprop", {}),
    ("excitation_backprop contrastive", "excitation_backprop", {"contrastive": True}),
    ("deeplift", "deeplift", {}),
    ("patternnet", "patternnet", {}),
    ("pattern_attribution", "pattern_attribution", {}),
]


def unique_calls(module: torch.nn.Module) -> torch.nn.Module:
    """The module traced with torch.fx, each call of a module given its own copy: Captum's DeepLift refuses
    a module called twice (torchvision's ResNet blocks call their ReLU twice)."""
    graph = torch.fx.symbolic_trace(module)
    seen: set[str] = set()
    for node in graph.graph.nodes:
        if node.op == "call_module":
            if node.target in seen:
                name = f"{node.target}_call_{node.name}".replace(".", "_")
                graph.add_submodule(name, copy.deepcopy(graph.get_submodule(str(node.target))))
                node.target = name
            seen.add(str(node.target))
    graph.recompile()
    return graph


def references(model: LocalModel, x: torch.Tensor, target: int) -> dict[str, Callable[[], object]]:
    """The reference libraries' attributions of the same input, by the label of the method they match."""
    from captum.attr import DeepLift
    from zennit import composites, rules, types
    from zennit.attribution import Gradient
    from zennit.layer import Sum
    from zennit.torchvision import ResNetCanonizer

    module = copy.deepcopy(model.module)
    low, high = model.normalize(torch.zeros(1, 3, 1, 1)), model.normalize(torch.ones(1, 3, 1, 1))
    seed = torch.eye(len(model.labels))[[target]]

    def zennit(make: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with Gradient(model=module, composite=make()) as attributor:
                return attributor(x, lambda out: out * seed)[1]
        return run

    def canon() -> list[object]:
        return [ResNetCanonizer()]

    def deep_taylor() -> object:  # z-plus everywhere, z-box at the input
        return composites.SpecialFirstLayerMapComposite(
            layer_map=[(types.Activation, rules.Pass()), (Sum, rules.Norm()), (types.AvgPool, rules.Norm()),
                       (types.Linear, rules.ZPlus())],
            first_map=[(types.Convolution, rules.ZBox(low=low, high=high))], canonizers=canon())

    deeplift_model = unique_calls(copy.deepcopy(model.module))
    baseline = model.normalize(torch.zeros_like(x))
    return {
        "lrp epsilon_plus_flat (default)": zennit(lambda: composites.EpsilonPlusFlat(canonizers=canon())),
        "lrp epsilon_gamma_box": zennit(lambda: composites.EpsilonGammaBox(low=low, high=high, canonizers=canon())),
        "lrp epsilon_alpha2_beta1": zennit(lambda: composites.EpsilonAlpha2Beta1(canonizers=canon())),
        "lrp epsilon_plus": zennit(lambda: composites.EpsilonPlus(canonizers=canon())),
        "deep_taylor": zennit(deep_taylor),
        "excitation_backprop": zennit(lambda: composites.ExcitationBackprop(zero_params="bias", canonizers=canon())),
        "deeplift": lambda: DeepLift(deeplift_model).attribute(x, baselines=baseline, target=target),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-propagation-"))
    make_bundle(args.arch, root / args.arch, size=args.size, num_classes=1000, seed=0)
    model = ModelRegistry(root, device="auto", state_dir=root / "state").get(args.arch)
    assert isinstance(model, LocalModel)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(args.size, args.size, 3), dtype=np.uint8)
    raw = RawInput(image=rgb)
    x = model.prepare(raw).x.contiguous(memory_format=torch.channels_last)
    with model.lock:
        store_patterns(model, compute_patterns(model, [RawInput(image=rng.integers(0, 256, size=rgb.shape,
                                                                                     dtype=np.uint8))
                                                       for _ in range(8)], "random images"))

    def bare() -> None:
        xi = x.detach().requires_grad_(True)
        out = model.module(xi)
        torch.autograd.grad(out[0, int(out[0].argmax())], xi)

    def ours(method: str, params: dict[str, object]) -> Callable[[], object]:
        cls = get_method(method)
        p = parse_params(cls.Params, params)
        return lambda: cls().explain(model, raw, p)

    target = get_method("lrp")().explain(model, raw, parse_params(get_method("lrp").Params, {})).target.index
    refs = references(model, x.contiguous(), target)
    fns: dict[str, Callable[[], object]] = {"bare forward + backward": bare}
    for label, method, params in OURS:
        fns[label] = ours(method, params)
        if label in refs:
            fns["ref " + label] = refs[label]
    times = interleaved(fns, rounds=args.rounds)
    floor = times["bare forward + backward"]
    print(f"{args.arch} {args.size}x{args.size}, torch threads {torch.get_num_threads()}, device {model.device}")
    print(f"bare forward + backward: {floor * 1e3:.1f} ms")
    print(f"{'method':<34} {'ms':>8} {'/ fwd+bwd':>10} {'reference ms':>13} {'/ reference':>12}")
    for label, _, _ in OURS:
        t = times[label]
        ref = times.get("ref " + label)
        who = "" if ref is None else f"{ref * 1e3:>13.1f} {t / ref:>12.2f}"
        print(f"{label:<34} {t * 1e3:>8.1f} {t / floor:>10.2f} {who}")
    print("references: Zennit 0.5 (LRP composites, deep Taylor as z-plus with a z-box first layer, excitation "
          "backprop with biases zeroed), Captum 0.9 DeepLift (on an fx copy where each ReLU call has its own module)")


if __name__ == "__main__":
    main()
