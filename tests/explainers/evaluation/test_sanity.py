"""The model randomisation test: Grad-CAM passes, guided backpropagation fails (Adebayo et al. 2018)."""

from __future__ import annotations

import pytest
import torch

from explainers.evaluation.sanity import SanityOptions, sanity_check, stage_groups
from explainers.methods import get_method
from explainers.models.samples import bundle_samples
from explainers.params import parse_params
from explainers.propagation.graph import canonize


def check(model, name: str) -> dict:
    cls = get_method(name)
    raws = bundle_samples(model)[:3]
    return sanity_check(model, cls(), parse_params(cls.Params, {}), raws, SanityOptions(stages=5, seed=1))


@pytest.fixture(scope="module")
def shapes(demo_registry):
    return demo_registry.get("shapes-cnn")


def test_gradcam_passes(shapes):
    out = check(shapes, "gradcam")
    assert out["verdict"] == "passes" and out["passes"] is True
    assert [s["randomised"] for s in out["stages"]] == ["head", "features.12", "features.8", "features.4",
                                                         "features.0"]
    assert all(s["ssim"] < 0.5 for s in out["stages"])


def test_guided_backprop_fails_it_keeps_the_edges(shapes):
    out = check(shapes, "guided_backprop")
    assert out["verdict"] == "fails"
    first = out["stages"][0]
    assert first["ssim"] > 0.8 and first["spearman"] > 0.5  # the output layer randomised: nearly the same map


def test_the_served_model_is_not_touched_and_propagation_sees_new_weights(shapes):
    state = {k: v.clone() for k, v in shapes.module.state_dict().items()}
    out = check(shapes, "lrp")
    for key, value in shapes.module.state_dict().items():
        assert torch.equal(value, state[key]), key
    # the folded layers are copies: without a fresh canonization the stages would not differ
    assert len({round(s["ssim"], 6) for s in out["stages"]}) == len(out["stages"])
    assert canonize(shapes.module).graph is canonize(shapes.module).graph


def test_stages_group_layers_top_down():
    names = [f"l{i}" for i in range(10)]
    groups = stage_groups(names, 4)
    assert groups[0][0] == "l9" and groups[-1][-1] == "l0"
    assert sum(len(g) for g in groups) == 10 and len(groups) == 4
    assert stage_groups(names[:3], 8) == [["l2"], ["l1"], ["l0"]]


def test_a_canonized_graph_follows_weights_written_in_place():
    from tests.explainers.propagation.conftest import BiasFree

    module = BiasFree()
    first = canonize(module)
    with torch.no_grad():
        module.conv1.weight.mul_(2)
    second = canonize(module)
    assert second is not first
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(second.forward(x), module(x))
