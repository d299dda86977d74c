"""DeepLIFT's summation to delta: the attributions sum to f(x) - f(baseline) within 1e-5, relative."""

from __future__ import annotations

import pytest

from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import ARCHS, explain

SHIPPED = ["shapes-cnn", "sentiment-cnn", "breast-cancer-mlp"]
BASELINES = {"image": ["black", "blur", "white"], "text": ["pad", "unk", "zero"], "tabular": ["mean", "median", "zero"]}


def complete(details: dict) -> None:
    gap, difference = details["completeness_gap"], details["score_difference"]
    assert abs(gap) <= 1e-5 * max(abs(difference), 1e-3), details
    assert difference == pytest.approx(details["score_input"] - details["score_baseline"], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("model_id", SHIPPED)
@pytest.mark.parametrize("which", [0, 1, 2])
def test_deeplift_is_complete_on_every_shipped_model(demo_registry, model_id, which):
    model = demo_registry.get(model_id)
    baseline = BASELINES[model.modality.value][which]
    for seed in range(3):
        complete(explain("deeplift", model, raw_for(model, seed), baseline=baseline).details)


@pytest.mark.parametrize("arch", ARCHS)
def test_deeplift_is_complete_on_the_torchvision_architectures(arch_registry, arch):
    model = arch_registry.get(arch)
    for seed in range(2):
        complete(explain("deeplift", model, raw_for(model, seed)).details)


def test_deeplift_explains_the_difference_to_the_baseline(demo_registry):
    """Not a constant map: the input minus a baseline it equals gives zero everywhere."""
    model = demo_registry.get("breast-cancer-mlp")
    raw = raw_for(model, 0)
    same = explain("deeplift", model, raw, baseline="zero")
    assert abs(same.attribution).max() > 0
    from explainers.models.handle import RawInput

    zero = RawInput(features=raw.features * 0)  # type: ignore[operator]
    assert abs(explain("deeplift", model, zero, baseline="zero").attribution).max() == 0
