"""The `xai` command line against the live service."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image

from explainers.methods import all_methods
from tests.live.conftest import EXAMPLES, ROOT, LiveServer
from xai_client.cli import main

SHIPPED = {p.name for p in (Path(__file__).resolve().parents[2] / "models").iterdir() if (p / "model.json").is_file()}


def xai_command() -> list[str]:
    """The installed console script when there is one (CI's fresh venv), else its entry point's module."""
    found = shutil.which("xai", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))
    return [found] if found else [sys.executable, "-m", "xai_client"]


def run(live: LiveServer, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--url", live.url, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_console_script_is_declared_and_runs(live: LiveServer, tmp_path: Path) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["xai"] == "xai_client.cli:main"
    overlay = tmp_path / "overlay.png"
    env = {**os.environ, "XAI_URL": live.url, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([*xai_command(), "explain", "--model", "shapes-cnn", "--method", "gradcam",
                           str(EXAMPLES / "shape-0.png"), "-o", str(overlay)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "gradcam on shapes-cnn: circle" in done.stdout and f"wrote {overlay}" in done.stdout
    with Image.open(overlay) as img:
        assert img.format == "PNG" and img.width == 256 and img.height > 256


def test_models_and_methods(live: LiveServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(live, capsys, "models")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["id", "modality", "source"]
    assert {line.split()[0] for line in out.splitlines()[1:]} == SHIPPED
    code, out, _ = run(live, capsys, "methods")
    assert code == 0 and {line.split()[0] for line in out.splitlines()[1:]} == set(all_methods())
    code, out, _ = run(live, capsys, "methods", "--model", "breast-cancer-mlp")
    listed = {line.split()[0] for line in out.splitlines()[1:]}
    assert listed == {n for n, c in all_methods().items() if "tabular" in {m.value for m in c.modalities}}


def test_async_explain_shows_a_progress_bar_and_lists_the_job(live: LiveServer, capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    npy = tmp_path / "rise.npy"
    code, out, err = run(live, capsys, "explain", "-m", "shapes-cnn", "-M", "rise", str(EXAMPLES / "shape-4.png"),
                         "-p", "n_masks=300", "-p", "seed=2", "--style", "mask", "--npy", str(npy))
    assert code == 0, err
    bars = [line for line in err.splitlines() if line.startswith("[")]
    assert bars and "100.0%" in bars[-1] and "finished" in bars[-1]
    assert re.search(r"\[#{30}\]", bars[-1])
    assert "rise on shapes-cnn: star" in out
    job_id = re.search(r"job ([0-9a-f]{32})", out)
    assert job_id, out
    assert np.load(npy).shape == (64, 64)
    code, out, _ = run(live, capsys, "jobs")
    assert code == 0 and job_id[1] in out
    code, out, _ = run(live, capsys, "jobs", job_id[1])
    assert code == 0 and "finished" in out and "rise on shapes-cnn" in out


def test_text_features_and_predict(live: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    page = tmp_path / "review.html"
    code, out, err = run(live, capsys, "explain", "-m", "sentiment-cnn", "-M", "saliency",
                         "--text", "a marvellous phone , truly superb", "-o", str(page))
    assert code == 0, err
    assert "outside the vocabulary: marvellous" in out and page.read_text().startswith("<!doctype html>")
    code, out, err = run(live, capsys, "explain", "-m", "breast-cancer-mlp", "-M", "input_x_gradient",
                         str(EXAMPLES / "request-breast-cancer.json"))
    assert code == 0 and "top features:" in out, err
    code, out, _ = run(live, capsys, "predict", "-m", "breast-cancer-mlp", str(EXAMPLES / "breast-cancer-row.json"))
    assert code == 0 and out.split()[0] in ("malignant", "benign")


def test_errors_say_what_is_wrong(live: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG but not really")
    code, _, err = run(live, capsys, "explain", "-m", "shapes-cnn", "-M", "gradcam", str(bad))
    assert code == 1 and "xai: invalid_image:" in err
    code, _, err = run(live, capsys, "explain", "-m", "shapes-cnn", "-M", "integrated_gradients",
                       str(EXAMPLES / "shape-0.png"), "-p", "n_steps=0")
    assert code == 1 and "invalid_params" in err and "details" in err
    code, _, err = run(live, capsys, "explain", "-m", "shapes-cnn", "-M", "gradcam", str(tmp_path / "missing.png"))
    assert code == 2 and "no such file" in err
    code, _, err = run(live, capsys, "explain", "-m", "shapes-cnn", "-M", "gradcam", str(EXAMPLES / "shape-0.png"),
                       "-p", "novalue")
    assert code == 2 and "key=value" in err


def test_explain_a_model(live: LiveServer, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chart = tmp_path / "rules.png"
    code, out, err = run(live, capsys, "explain-model", "-m", "breast-cancer-mlp", "-M", "rule_extraction",
                         "-p", "max_depth=2", "-o", str(chart))
    assert code == 0, err
    assert "rule_extraction on breast-cancer-mlp" in out and "\nIF " in out and "fidelity: " in out
    assert chart.read_bytes().startswith(b"\x89PNG")
    code, out, err = run(live, capsys, "explain-model", "-m", "shapes-cnn", "-M", "activation_maximisation",
                         "--target", "star", "-p", "n_steps=5", "-q")
    assert code == 0 and "image star: 64x64, objective " in out, err
    code, _, err = run(live, capsys, "explain-model", "-m", "shapes-cnn", "-M", "gradcam")
    assert code == 1 and "local_method" in err
