"""Write MLServer model folders for the demo models, and the remote bundles that point at them.

The breast-cancer MLP (models/breast-cancer-mlp: standardise with buffers, then Linear-ReLU-...-Linear)
becomes a scikit-learn `Pipeline(StandardScaler, MLPClassifier)` computing the same function, served
by MLServer's sklearn runtime with `predict_proba`:

    python scripts/mlserver_models.py --out /mnt/models                    # MLServer's model repository
    python scripts/mlserver_models.py --out /mnt/models --server-settings --http-port 8080
    python scripts/mlserver_models.py --out /mnt/models --remote-bundle /models/breast-cancer-remote \\
        --server-url http://modelserver:8080                               # the bundle for our registry

Run it with the Python that MLServer runs (its scikit-learn unpickles `model.joblib`). It needs only
numpy, scikit-learn and joblib: the weights are read from safetensors without torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("mlserver_models")

ROOT = Path(__file__).resolve().parent.parent
DEMO_BUNDLE = ROOT / "models" / "breast-cancer-mlp"
INPUT_NAME, OUTPUT_NAME = "features", "predict_proba"
SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a .safetensors file as numpy arrays (format: u64 header size, JSON header, data)."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + size])
    data = memoryview(raw)[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<")
        out[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(info["shape"]).copy()
    return out


def mlp_layers(state: dict[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight [out, in], bias [out]) of each `net.{i}` Linear, in order."""
    indices = sorted(int(k.split(".")[1]) for k in state if k.startswith("net.") and k.endswith(".weight"))
    return [(state[f"net.{i}.weight"].astype(np.float64), state[f"net.{i}.bias"].astype(np.float64))
            for i in indices]


def numpy_forward(state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The torch module's softmax output, in numpy (the reference `--verify` compares against)."""
    h = (x.astype(np.float64) - state["mean"]) / state["std"]
    layers = mlp_layers(state)
    for k, (w, b) in enumerate(layers):
        h = h @ w.T + b
        if k < len(layers) - 1:
            h = np.maximum(h, 0.0)
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def sklearn_pipeline(state: dict[str, np.ndarray]) -> Any:
    """`Pipeline(StandardScaler, MLPClassifier)` with the torch weights: the same predict_proba.

    The scikit-learn objects are initialised by a one-step fit on random data, then every fitted
    parameter is overwritten. Two classes: scikit-learn's MLP has one logistic output, and
    sigmoid(l1 - l0) is exactly softmax([l0, l1])[1], so the last layer is the logits' difference.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    layers = mlp_layers(state)
    n_features, n_classes = layers[0][0].shape[1], layers[-1][0].shape[0]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4 * n_classes, n_features))
    y = np.arange(4 * n_classes) % n_classes
    scaler = StandardScaler().fit(x)
    mean, std = state["mean"].astype(np.float64), state["std"].astype(np.float64)
    scaler.mean_, scaler.scale_, scaler.var_ = mean, std, std ** 2
    clf = MLPClassifier(hidden_layer_sizes=tuple(w.shape[0] for w, _ in layers[:-1]), activation="relu",
                        max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
    coefs = [w.T.copy() for w, _ in layers]
    intercepts = [b.copy() for _, b in layers]
    if n_classes == 2:
        w, b = layers[-1]
        coefs[-1], intercepts[-1] = (w[1] - w[0])[:, None], np.array([b[1] - b[0]])
    for have, new in zip(clf.coefs_ + clf.intercepts_, coefs + intercepts):
        assert have.shape == new.shape, f"layer shape {new.shape} does not fit scikit-learn's {have.shape}"
    clf.coefs_, clf.intercepts_ = coefs, intercepts
    return Pipeline([("scale", scaler), ("mlp", clf)])


def write_sklearn_model(out: Path, bundle: Path = DEMO_BUNDLE, name: str | None = None,
                        verify: bool = True) -> Path:
    """`out/<name>/{model-settings.json, model.joblib}` for the bundle's MLP; returns the folder."""
    import joblib

    manifest = json.loads((bundle / "model.json").read_text())
    name = name or manifest["id"]
    state = read_safetensors(bundle / manifest["weights"])
    pipeline = sklearn_pipeline(state)
    if verify:
        background = np.load(bundle / manifest["tabular"]["background"]).astype(np.float32)
        gap = float(np.abs(pipeline.predict_proba(background) - numpy_forward(state, background)).max())
        if gap > 1e-5:
            raise SystemExit(f"the scikit-learn pipeline differs from the module by {gap:.2e}")
        log.info("%s: scikit-learn and the module agree within %.1e on %d rows", name, gap, len(background))
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    n_features, n_classes = len(manifest["tabular"]["features"]), len(manifest["labels"])
    settings = {
        "name": name, "implementation": "mlserver_sklearn.SKLearnModel",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, n_features]}],
        "outputs": [{"name": OUTPUT_NAME, "datatype": "FP64", "shape": [-1, n_classes]}],
        "parameters": {"uri": "./model.joblib", "extra": {"predict_fn": OUTPUT_NAME}},
    }
    (folder / "model-settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return folder


def write_server_settings(out: Path, http_port: int = 8080, grpc_port: int = 8081, metrics_port: int | None = 8082,
                          host: str = "0.0.0.0") -> Path:
    """MLServer's `settings.json`: inference in the server process (`parallel_workers: 0`)."""
    settings: dict[str, Any] = {"host": host, "http_port": http_port, "grpc_port": grpc_port,
                                "parallel_workers": 0, "debug": False}
    if metrics_port is None:
        settings["metrics_endpoint"] = None
    else:
        settings["metrics_port"] = metrics_port
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
    return out / "settings.json"


def write_remote_bundle(dest: Path, server_url: str, bundle: Path = DEMO_BUNDLE, name: str | None = None,
                        model_id: str | None = None, **remote: Any) -> Path:
    """A registry bundle for the served model: the local manifest's labels and features, a `remote`
    section instead of the weights, and the background sample."""
    manifest = json.loads((bundle / "model.json").read_text())
    served = name or manifest["id"]
    for key in ("architecture", "architecture_kwargs", "weights", "output"):
        manifest.pop(key, None)
    manifest["id"] = model_id or f"{manifest['id']}-remote"
    manifest["description"] = (manifest.get("description", "") + " Served by MLServer (scikit-learn).").strip()
    manifest["remote"] = {"url": server_url, "model_name": served, "input_name": INPUT_NAME, "datatype": "FP32",
                          "layout": "features", "output_name": OUTPUT_NAME, "output": "probabilities", **remote}
    dest.mkdir(parents=True, exist_ok=True)
    background = manifest["tabular"]["background"]
    shutil.copy(bundle / background, dest / background)
    (dest / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="MLServer's model repository folder")
    parser.add_argument("--bundle", type=Path, default=DEMO_BUNDLE, help="the local tabular MLP bundle")
    parser.add_argument("--name", help="model name on the server (default: the bundle's id)")
    parser.add_argument("--no-verify", action="store_true", help="skip comparing scikit-learn with the module")
    parser.add_argument("--server-settings", action="store_true", help="also write the server's settings.json")
    parser.add_argument("--host", default="0.0.0.0", help="the server's listening address")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--grpc-port", type=int, default=8081)
    parser.add_argument("--metrics-port", type=int, default=8082, help="0: no metrics endpoint")
    parser.add_argument("--remote-bundle", type=Path, help="also write our registry's bundle for the served model")
    parser.add_argument("--server-url", default="http://127.0.0.1:8080", help="the server, as the service sees it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = write_sklearn_model(args.out, args.bundle, args.name, verify=not args.no_verify)
    log.info("wrote %s", folder)
    if args.server_settings:
        log.info("wrote %s", write_server_settings(args.out, args.http_port, args.grpc_port,
                                                   args.metrics_port or None, args.host))
    if args.remote_bundle:
        log.info("wrote %s", write_remote_bundle(args.remote_bundle, args.server_url, args.bundle,
                                                 args.name or folder.name))


if __name__ == "__main__":
    main()
