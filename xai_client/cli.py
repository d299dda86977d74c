"""`xai`: the explanation service from a shell.

    xai models
    xai methods [--model shapes-cnn]
    xai explain --model shapes-cnn --method gradcam examples/shape-0.png -o overlay.png
    xai explain --model sentiment-cnn --method kernel_shap --text "a dull plot" -p seed=1 -o text.html
    xai predict --model breast-cancer-mlp examples/breast-cancer-row.json
    xai explain-model --model breast-cancer-mlp --method rule_extraction -p max_depth=3 -o rules.png
    xai jobs [JOB_ID] [--cancel | --wait]

The service's address: `--url`, else `$XAI_URL`, else http://localhost:8000. Async methods show
a progress bar on stderr. Exit status: 0 done, 1 the service answered with an error, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xai_client.client import Client
from xai_client.progress import ProgressBar
from xai_client.types import Explanation, Job, XaiError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}


class UsageError(Exception):
    """A command line that cannot be run (exit status 2)."""


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        out("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip())


def parse_value(text: str) -> Any:
    """A param's value: JSON when it parses (8, 0.5, null, true), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def read_input(args: argparse.Namespace) -> dict[str, Any]:
    """image= / text= / features= from the positional file, --text or --features."""
    if args.text is not None:
        return {"text": args.text}
    if args.features is not None:
        source = Path(args.features)
        data = json.loads(source.read_text() if source.is_file() else args.features)
        return {"features": data.get("features", data) if isinstance(data, dict) else data}
    if args.input is None:
        raise UsageError("give an input file, --text or --features")
    path = Path(args.input)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return {"image": path}
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("input"), dict):  # a whole request body
            data = data["input"]
        return {"features": data.get("features", data) if isinstance(data, dict) else data}
    return {"text": path.read_text(encoding="utf-8").strip()}


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--param takes key=value, not {item!r}")
        params[key.strip()] = parse_value(value)
    return params


def output_of(args: argparse.Namespace) -> dict[str, Any]:
    output: dict[str, Any] = {}
    for key in ("style", "size", "colormap", "alpha"):
        if getattr(args, key) is not None:
            output[key] = getattr(args, key)
    if args.no_caption:
        output["caption"] = False
    return output


def show(expl: Explanation) -> None:
    t = expl.target
    out(f"{expl.method} on {expl.model_id}: {t.label} (p = {t.score:.3f})")
    out("  predictions: " + ", ".join(f"{p.label} {p.score:.3f}" for p in expl.predictions))
    if expl.unknown_tokens:
        out("  outside the vocabulary: " + ", ".join(expl.unknown_tokens))
    if expl.details.get("features"):
        top = expl.details["features"][:5]
        out("  top features: " + ", ".join(f"{f['name']} {f['score']:+.3g}" for f in top))
    total = expl.timing_ms.get("total")
    if total is not None:
        out(f"  time: {total:.0f} ms" + (f" (job {expl.job_id})" if expl.job_id else ""))


def cmd_explain(client: Client, args: argparse.Namespace) -> int:
    target: Any = parse_value(args.target) if args.target is not None else None
    answer = client.submit(args.method, args.model, target=target, params=params_of(args), output=output_of(args),
                           **read_input(args))
    if isinstance(answer, Job):
        if args.no_wait:
            out(answer.job_id)
            return 0
        answer = client.wait(answer.job_id, progress=None if args.quiet else ProgressBar(), timeout=args.timeout)
    if args.json:
        out(json.dumps(answer.raw, indent=1))
    else:
        show(answer)
    if args.output:
        path = answer.save_overlay(args.output)
        size = f" ({answer.overlay.width}x{answer.overlay.height})" if answer.overlay is not None else ""
        out(f"  wrote {path}{size}")
    if args.npy:
        out(f"  wrote {answer.save_attribution(args.npy)}")
    return 0


def cmd_predict(client: Client, args: argparse.Namespace) -> int:
    for p in client.predict(args.model, top_k=args.top_k, **read_input(args)):
        out(f"{p.label:<20} {p.score:.4f}")
    return 0


def cmd_models(client: Client, args: argparse.Namespace) -> int:
    rows = [[m["id"], m["modality"], m["source"], str(len(m["labels"])), str(len(m["methods"])),
             m.get("description", "")[:60]] for m in client.models()]
    table(rows, ["id", "modality", "source", "classes", "methods", "description"])
    return 0


def cmd_methods(client: Client, args: argparse.Namespace) -> int:
    methods = client.methods()
    if args.model:
        info = client.model(args.model)
        usable = set(info["methods"]) | set(info.get("global_methods", []))
        methods = [m for m in methods if m["name"] in usable]
    rows = [[m["name"], m.get("scope", "local"), m["execution"], ",".join(m["modalities"]),
             " ".join(sorted(m["params"]["properties"]))] for m in methods]
    table(rows, ["method", "scope", "runs", "modalities", "params"])
    return 0


def cmd_explain_model(client: Client, args: argparse.Namespace) -> int:
    target: Any = parse_value(args.target) if args.target is not None else None
    one = read_input(args) if args.input is not None or args.text is not None or args.features is not None else {}
    expl = client.explain_model(args.method, args.model, target=target, params=params_of(args),
                                progress=None if args.quiet else ProgressBar(), timeout=args.timeout, **one)
    if args.json:
        out(json.dumps(expl.raw, indent=1))
    else:
        out(f"{expl.method} on {expl.model_id} (job {expl.job_id})")
        if expl.text:
            out(expl.text)
        for label, objective, image in expl.images or []:
            out(f"  image {label}: {image.width}x{image.height}" + (f", objective {objective:.4g}"
                                                                     if objective is not None else ""))
        for key in ("fidelity", "relative_error"):
            if key in expl.details:
                out(f"  {key}: {expl.details[key]:.4g}")
    if args.output:
        out(f"  wrote {expl.save_chart(args.output)}")
    return 0


def cmd_jobs(client: Client, args: argparse.Namespace) -> int:
    if args.job_id is None:
        rows = [[j.job_id, j.status, f"{j.progress * 100:.0f}%", j.method or "", j.model_id or "",
                 (j.created_at or "")[:19]] for j in client.jobs(args.limit)]
        table(rows, ["job", "status", "progress", "method", "model", "created"])
        return 0
    if args.cancel:
        job = client.cancel(args.job_id)
    elif args.wait:
        show(client.wait(args.job_id, progress=ProgressBar(), timeout=args.timeout))
        return 0
    else:
        job = client.job(args.job_id)
    out(f"{job.job_id}  {job.status}  {job.progress * 100:.0f}%  {job.method} on {job.model_id}")
    if job.error:
        out(f"  error: {job.error['code']}: {job.error['message']}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xai", description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--url", default=None, help="the service (default: $XAI_URL or http://localhost:8000)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for a job (default: no limit)")
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("explain", "predict"):
        s = sub.add_parser(name, help=f"{name} one input")
        s.add_argument("input", nargs="?", help="an image, a .txt file or a .json file of features")
        s.add_argument("--model", "-m", required=True)
        s.add_argument("--text", help="the text to explain, instead of a file")
        s.add_argument("--features", help="features as JSON, or a JSON file")
        if name == "predict":
            s.add_argument("--top-k", type=int, default=5)
            continue
        s.add_argument("--method", "-M", required=True)
        s.add_argument("--param", "-p", action="append", help="a param, key=value (repeatable)")
        s.add_argument("--params", help="params as a JSON object")
        s.add_argument("--target", help="class index or label (default: the top class)")
        s.add_argument("--style", choices=["overlay", "heatmap", "graymap", "diverging", "mask", "contour"])
        s.add_argument("--size", type=int, help="long side of the picture, px")
        s.add_argument("--colormap")
        s.add_argument("--alpha", type=float)
        s.add_argument("--no-caption", action="store_true")
        s.add_argument("-o", "--output", help="write the picture (PNG; text models: an HTML page)")
        s.add_argument("--npy", help="write the attribution as a .npy file")
        s.add_argument("--json", action="store_true", help="print the whole response")
        s.add_argument("--no-wait", action="store_true", help="async methods: print the job id and return")
        s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    s = sub.add_parser("explain-model", help="explain a model with a global method (a job)")
    s.add_argument("input", nargs="?", help="methods that take one input: an image, a .txt or a .json file")
    s.add_argument("--model", "-m", required=True)
    s.add_argument("--method", "-M", required=True)
    s.add_argument("--text", help="the one input as text, instead of a file")
    s.add_argument("--features", help="the one input's features as JSON, or a JSON file")
    s.add_argument("--param", "-p", action="append", help="a param, key=value (repeatable)")
    s.add_argument("--params", help="params as a JSON object")
    s.add_argument("--target", help="activation_maximisation: the class (index or label)")
    s.add_argument("-o", "--output", help="write the chart (PNG)")
    s.add_argument("--json", action="store_true", help="print the whole result")
    s.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sub.add_parser("models", help="list the models")
    s = sub.add_parser("methods", help="list the methods")
    s.add_argument("--model", "-m", help="only those that explain this model")
    s = sub.add_parser("jobs", help="list recent jobs, or show, wait for or cancel one")
    s.add_argument("job_id", nargs="?")
    s.add_argument("--limit", type=int, default=20)
    s.add_argument("--cancel", action="store_true")
    s.add_argument("--wait", action="store_true")
    return p


COMMANDS = {"explain": cmd_explain, "predict": cmd_predict, "models": cmd_models, "methods": cmd_methods,
            "jobs": cmd_jobs, "explain-model": cmd_explain_model}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(args.url) as client:
            return COMMANDS[args.command](client, args)
    except (UsageError, ValueError) as exc:
        sys.stderr.write(f"xai: {exc}\n")
        return 2
    except XaiError as exc:
        sys.stderr.write(f"xai: {exc.code}: {exc.message}\n")
        if exc.details:
            sys.stderr.write(f"  details: {json.dumps(exc.details)[:500]}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
