"""Write a bundle of a torchvision architecture with seeded random weights.

    python scripts/make_torchvision_bundle.py --arch resnet50 --out /tmp/models/resnet50 [--size 224]
        [--num-classes 1000] [--seed 0] [--id ID]

For benchmarks and tests: no pretrained weights are downloaded.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demos.torchvision_bundle import make_bundle
from explainers.models.manifest import read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help="torchvision model name, e.g. resnet50")
    parser.add_argument("--out", type=Path, required=True, help="bundle folder to write")
    parser.add_argument("--size", type=int, default=224, help="input height and width, px")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--id", default=None, help="manifest id (default: the folder name)")
    args = parser.parse_args(argv)
    folder = make_bundle(args.arch, args.out, size=args.size, num_classes=args.num_classes, seed=args.seed,
                         model_id=args.id)
    manifest = read_manifest(folder)
    print(f"wrote {folder} (id {manifest.id}, cam_layer {manifest.cam_layer})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
