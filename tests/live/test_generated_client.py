"""A client generated from openapi/openapi.json with openapi-python-client calls the live service, typed."""

from __future__ import annotations

import base64
import importlib
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from scripts.export_openapi import SPEC_PATH
from tests.live.conftest import EXAMPLES, LiveServer

PACKAGE = "xai_generated"
CONFIG = f"""package_name_override: {PACKAGE}
project_name_override: xai-generated
post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
  image/jpeg: application/octet-stream
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    pytest.importorskip("openapi_python_client", reason="openapi-python-client is in the [test] extra")
    folder = tmp_path_factory.mktemp("generated")
    (folder / "config.yaml").write_text(CONFIG)
    done = subprocess.run([sys.executable, "-m", "openapi_python_client", "generate", "--path", str(SPEC_PATH),
                           "--config", str(folder / "config.yaml"), "--meta", "none",
                           "--output-path", str(folder / PACKAGE)],
                          cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every part of the spec made it into the client
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_gradcam_with_typed_params(generated: ModuleType, live: LiveServer) -> None:
    from xai_generated.api.explain import explain
    from xai_generated.models import (
        ExplainMethod,
        ExplainRequest,
        Explanation,
        GradcamParams,
        Input,
        OutputSpec,
        OutputSpecStyle,
    )

    image = base64.b64encode((EXAMPLES / "shape-2.png").read_bytes()).decode()
    body = ExplainRequest(model_id="shapes-cnn", input_=Input(image=image), params=GradcamParams(layer="features.10"),
                          output=OutputSpec(style=OutputSpecStyle.GRAYMAP, size=128, caption=False))
    with generated.Client(base_url=live.url, raise_on_unexpected_status=True) as client:
        result = explain.sync(ExplainMethod.GRADCAM, client=client, body=body)
    assert isinstance(result, Explanation)
    assert result.method == "gradcam" and result.target.label == "triangle"
    assert result.details["layer"] == "features.10"  # the typed param reached the method
    assert result.attribution is not None and result.attribution.shape == [64, 64]


def test_typed_params_of_other_methods_and_errors(generated: ModuleType, live: LiveServer) -> None:
    from xai_generated.api.explain import explain
    from xai_generated.models import (
        ErrorBody,
        ExplainMethod,
        ExplainRequest,
        Explanation,
        Input,
        IntegratedGradientsParams,
        IntegratedGradientsParamsMethod,
        RiseParams,
    )

    text = Input(text="the camera was wonderful")
    with generated.Client(base_url=live.url, raise_on_unexpected_status=True) as client:
        ig = explain.sync(ExplainMethod.INTEGRATED_GRADIENTS, client=client, body=ExplainRequest(
            model_id="sentiment-cnn", input_=text,
            params=IntegratedGradientsParams(n_steps=12, method=IntegratedGradientsParamsMethod.RIEMANN_TRAPEZOID)))
        assert isinstance(ig, Explanation) and ig.details["n_steps"] == 12
        image = base64.b64encode((EXAMPLES / "shape-0.png").read_bytes()).decode()
        rise = explain.sync(ExplainMethod.RISE, client=client, wait=90, body=ExplainRequest(
            model_id="shapes-cnn", input_=Input(image=image), params=RiseParams(n_masks=200, seed=4)))
        assert isinstance(rise, Explanation) and rise.method == "rise"  # an async method, waited for
        bad = explain.sync_detailed(ExplainMethod.INTEGRATED_GRADIENTS, client=client, body=ExplainRequest(
            model_id="sentiment-cnn", input_=text, params=IntegratedGradientsParams(n_steps=0)))
    assert bad.status_code == 422 and isinstance(bad.parsed, ErrorBody)
    assert bad.parsed.error.code == "invalid_params"
