"""The attention methods and Grad-CAM on a ViT-B/16 over a bare forward + backward, on the same model and input.

    python bench/vit_latency.py [--rounds 5] [--batch 4] [--arch vit_b_16] [--size 224]

On a random-weight torchvision ViT (default `vit_b_16`, 224x224, float32, one input), measured in one run
with the calls interleaved: the median time of a bare forward (inference mode) and of a bare forward +
backward of the target logit to the input (autograd, frozen weights: what saliency costs), and of each
method's `Explainer.explain` (input preparation, the hooked forward, the backward, the map at the input's
size): `attention_rollout` (one forward with the attention weights asked for, no backward),
`transformer_attribution` (one forward and one backward with the attention and its gradient recorded) and
`gradcam` on the manifest's CAM layer (the last block's `ln_1` tokens on the patch grid: the backward
stops there, one block deep), each in ms and over the forward + backward and over the forward. With
`--batch N` (0: skip), `transformer_attribution` at the service layer (`ExplanationService.explain`, PNG
decoded, no picture) for one input, against `explain_inputs` of N inputs (`explainers.batching`), per
input, and how many of them it attributed together. The default run takes about 30 s on 2 quiet CPU
cores; `--rounds 1` is a smoke run, `--arch vit_b_32 --size 64` a cheap one.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import image_payload, interleaved
from demos.torchvision_bundle import make_bundle
from explainers.methods import get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from explainers.serialize import OutputOptions
from explainers.service import ExplanationService

METHODS = ["attention_rollout", "transformer_attribution", "gradcam"]
OUTPUT = OutputOptions(overlay=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="vit_b_16", help="a torchvision vit_* architecture")
    parser.add_argument("--size", type=int, default=224, help="input side (the position embedding is built for it)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4, help="inputs of the batched row (0: skip it)")
    args = parser.parse_args()
    if not args.arch.startswith("vit_"):
        parser.error("--arch must be a torchvision ViT (vit_b_16, vit_b_32, vit_l_16, ...)")
    root = Path(tempfile.mkdtemp(prefix="bench-vit-"))
    try:
        make_bundle(args.arch, root / args.arch, size=args.size, num_classes=1000, seed=0)
        service = ExplanationService(ModelRegistry(root, device="auto", state_dir=root / "state"))
        model = service.registry.get(args.arch)
        assert isinstance(model, LocalModel)
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, size=(args.size, args.size, 3), dtype=np.uint8)
                  for _ in range(max(1, args.batch))]
        raw = RawInput(image=images[0])
        x = model.prepare(raw).x

        def forward() -> None:
            with torch.inference_mode():
                model.module(x)

        def bare() -> None:
            xi = x.detach().requires_grad_(True)
            out = model.module(xi)
            torch.autograd.grad(out[0, int(out[0].argmax())], xi)

        def ours(method: str) -> Callable[[], object]:
            cls = get_method(method)
            p = parse_params(cls.Params, {})
            return lambda: cls().explain(model, raw, p)

        fns: dict[str, Callable[[], object]] = {"forward": forward, "forward + backward": bare}
        fns.update({m: ours(m) for m in METHODS})
        shared: list[int] = []  # inputs attributed together, as explain_inputs reports it
        if args.batch:
            payloads = [image_payload(rgb) for rgb in images]

            def one() -> None:
                service.explain("transformer_attribution", args.arch, payloads[0], output=OUTPUT)

            def together() -> None:
                body = service.explain_inputs("transformer_attribution", args.arch, payloads, output=OUTPUT)
                assert len(body["explanations"]) == len(payloads)
                shared.append(int(body["explanations"][0]["details"]["batched"]["inputs"]))

            fns["service, 1 input"], fns[f"service, {args.batch} inputs"] = one, together
        times = interleaved(fns, rounds=args.rounds, warmup=1 if args.rounds < 3 else 2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    fwd, floor = times["forward"], times["forward + backward"]
    print(f"{args.arch} {args.size}x{args.size}, float32, batch 1, torch threads {torch.get_num_threads()}, "
          f"device {model.device}, {args.rounds} rounds")
    print(f"bare forward: {fwd * 1e3:.1f} ms, bare forward + backward: {floor * 1e3:.1f} ms")
    print(f"{'method':<26} {'ms':>8} {'/ fwd+bwd':>10} {'/ fwd':>7}")
    for m in METHODS:
        print(f"{m:<26} {times[m] * 1e3:>8.1f} {times[m] / floor:>10.2f} {times[m] / fwd:>7.2f}")
    if args.batch:
        t1, tn = times["service, 1 input"], times[f"service, {args.batch} inputs"] / args.batch
        print(f"transformer_attribution, service layer: 1 input {t1 * 1e3:.1f} ms ({t1 / floor:.2f} x fwd+bwd), "
              f"{args.batch} inputs {tn * 1e3:.1f} ms per input ({tn / floor:.2f}); "
              f"batch 1 / per input: {t1 / tn:.2f}x")
        print(f"(explain_inputs attributed {shared[-1]} of the {args.batch} inputs together"
              f"{': the method has no batched form, each input ran alone' if shared[-1] == 1 else ''})")


if __name__ == "__main__":
    main()
