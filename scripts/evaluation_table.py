"""Evaluate the default methods on the shipped models and publish the table
(`python scripts/evaluation_table.py`; a few minutes on two cores).

It runs what `POST /models/{id}/evaluate` runs, on each local model's first 16 sample inputs (the shapes
demo's come with object masks, so its rows have the localisation figures too, with a pointing tolerance
of 4 px on its 64 px images), writes the results to
`docs/evaluation.json` and the table between the markers in the README. `--check` recomputes nothing: it
exits 1 when the README's table is not the one `docs/evaluation.json` gives (a test runs it), or when the
file was computed on other weights than the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "evaluation.json"
README = ROOT / "README.md"
START, END = "<!-- evaluation-table:start -->", "<!-- evaluation-table:end -->"
N_INPUTS = 16
POINTING_TOLERANCE = 4  # px: the shapes images are 64 px; the paper's 15 px is for images of about 224 px
log = logging.getLogger("evaluation_table")

COLUMNS = (  # (figure, header): each cell the mean, and the random map's mean in brackets where there is one
    ("deletion_auc", "deletion AUC (random) ↓"), ("insertion_auc", "insertion AUC (random) ↑"),
    ("morf_aopc", "MoRF AOPC (random) ↑"), ("lerf_aopc", "LeRF AOPC ↓"), ("pointing_game", "pointing game ↑"),
    ("energy_share", "energy in mask ↑"), ("ms_per_explanation", "ms / explanation"),
    ("evaluations_per_explanation", "evaluations / explanation"))


def evaluate(models: Path) -> dict[str, Any]:
    from explainers.models.registry import ModelRegistry
    from explainers.service import ExplanationService

    registry = ModelRegistry(models, device="cpu")
    service = ExplanationService(registry)
    out = []
    for model_id in registry.ids():
        manifest = registry.manifest(model_id)
        if manifest.remote is not None or manifest.task == "segmentation":  # the table is of classifiers
            continue
        result = service.studies.evaluate(model_id, n_inputs=N_INPUTS, pointing_tolerance=POINTING_TOLERANCE)
        result.pop("chart_png")
        out.append(result)
        log.info("%s: %d inputs, %.1f s", model_id, result["n_inputs"], result["seconds"])
    return {"written_by": "scripts/evaluation_table.py", "models": out}


def _cell(row: dict[str, Any], figure: str) -> str:
    value = row.get(figure)
    if not value:
        return "–"
    digits = {"ms_per_explanation": 1, "evaluations_per_explanation": 0}.get(figure, 3)
    text = f"{value['mean']:.{digits}f}"
    random = row.get(f"random_{figure}")
    if random:
        text += f" ({random['mean']:.{digits}f})"
    return text


def table(results: dict[str, Any]) -> str:
    lines = ["| model | inputs | method | " + " | ".join(h for _, h in COLUMNS) + " |",
             "|---|---|---|" + "---|" * len(COLUMNS)]
    for model in results["models"]:
        for row in model["rows"]:
            inputs = f"{row['n']} ({model['with_regions']} with masks)" if model["with_regions"] else str(row["n"])
            lines.append(f"| `{model['model_id']}` | {inputs} | `{row['method']}` | "
                         + " | ".join(_cell(row, f) for f, _ in COLUMNS) + " |")
    settings = results["models"][0]["settings"] if results["models"] else {}
    lines.append("")
    lines.append(f"Each figure is the mean over the inputs; {settings.get('steps')} steps, fill "
                 f"`{settings.get('fill')}`, pointing tolerance {settings.get('pointing_tolerance')} px; "
                 "the times are of one run on two CPU cores. Written by `python scripts/evaluation_table.py` "
                 "from `docs/evaluation.json` (the standard errors are there).")
    return "\n".join(lines)


def with_table(readme: str, rendered: str) -> str:
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{rendered}\n{END}{tail}"


def stale(results: dict[str, Any], models: Path) -> list[str]:
    """Models whose figures were computed on other weights than the shipped ones."""
    from explainers.models.registry import ModelRegistry

    registry = ModelRegistry(models, device="cpu")
    return [m["model_id"] for m in results["models"] if m["weights_hash"] != registry.weights_hash(m["model_id"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--check", action="store_true", help="exit 1 where the README or the file is out of date")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    readme = README.read_text()
    if args.check:
        results = json.loads(RESULTS.read_text())
        problems = stale(results, args.models)
        if with_table(readme, table(results)) != readme:
            problems.append("README table")
        if problems:
            log.error("out of date: %s (run python scripts/evaluation_table.py)", ", ".join(problems))
            sys.exit(1)
        return
    results = evaluate(args.models)
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    README.write_text(with_table(readme, table(results)))


if __name__ == "__main__":
    main()
