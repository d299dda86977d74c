"""Run the model randomisation test on the shipped models and write each bundle's `sanity.json`
(`python scripts/sanity_checks.py`; about a minute on two cores).

For each local model under `models/`, the default methods it takes (those of gradcam, saliency,
guided_backprop and integrated_gradients), its first four sample inputs and eight stages. `GET /methods`
reads the verdicts from the file while the model's weights hash is the one written in it; retrain a
model and run this again (a test checks the hashes).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explainers.service import ExplanationService

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("sanity_checks")
N_INPUTS, STAGES, SEED = 4, 8, 0


def check(service: ExplanationService, model_id: str) -> dict[str, Any]:
    result = service.studies.sanity(model_id, n_inputs=N_INPUTS, stages=STAGES, seed=SEED)
    for method in result["methods"]:
        method.pop("cached", None)
    result.pop("seconds", None)
    result["settings"] = {"n_inputs": N_INPUTS, "stages": STAGES, "seed": SEED,
                          "written_by": "scripts/sanity_checks.py"}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("ids", nargs="*", help="model ids (default: every local bundle)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from explainers.models.registry import ModelRegistry
    from explainers.service import ExplanationService

    registry = ModelRegistry(args.models, device="cpu")  # no state folder: nothing is read from a cache
    service = ExplanationService(registry)
    ids = args.ids or [i for i in registry.ids() if registry.manifest(i).remote is None]
    for model_id in ids:
        result = check(service, model_id)
        path = registry.folder_of(model_id) / "sanity.json"
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        log.info("%s: %s", model_id, ", ".join(f"{m['method']} {m['verdict']}" for m in result["methods"]))


if __name__ == "__main__":
    main()
