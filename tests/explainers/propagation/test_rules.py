"""Each layer rule against its formula written plainly with autograd, on a convolution and a dense layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from explainers.propagation import rules as R

EPS = 1e-6


def plain_vjp(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    xr = x.clone().requires_grad_(True)
    out = nn.functional.linear(xr, weight) if isinstance(layer, nn.Linear) else layer._conv_forward(xr, weight, None)
    return torch.autograd.grad(out, xr, s)[0]


def fwd(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    if isinstance(layer, nn.Linear):
        return nn.functional.linear(x, weight, bias)
    return layer._conv_forward(x, weight, bias)


def stab(z: torch.Tensor) -> torch.Tensor:
    return z + EPS * ((z == 0).to(z.dtype) + z.sign())  # Zennit's stabilizer, written its way


def expected(name: str, layer: nn.Module, x: torch.Tensor, z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    w, b = layer.weight, layer.bias
    wp, wn, bp, bn = w.clamp(min=0), w.clamp(max=0), b.clamp(min=0), b.clamp(max=0)
    xp, xn = x.clamp(min=0), x.clamp(max=0)

    def t(weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return plain_vjp(layer, x, weight, s)

    if name == "epsilon":
        return x * t(w, r / stab(z))
    if name in ("z_plus", "alpha_beta"):
        alpha, beta = (1.0, 0.0) if name == "z_plus" else (2.0, 1.0)
        zp = fwd(layer, xp, wp, bp) + fwd(layer, xn, wn, None)
        zn = fwd(layer, xp, wn, bn) + fwd(layer, xn, wp, None)
        pos = xp * t(wp, r / stab(zp)) + xn * t(wn, r / stab(zp))
        neg = xp * t(wn, r / stab(zn)) + xn * t(wp, r / stab(zn))
        return alpha * pos - beta * neg
    if name == "gamma":
        g = 0.25
        up, down = w + g * wp, w + g * wn
        zp = fwd(layer, xp, up, b + g * bp) + fwd(layer, xn, down, None)
        zn = fwd(layer, xp, down, b + g * bn) + fwd(layer, xn, up, None)
        sp, sn = (z > 0).float() * r / stab(zp), (z < 0).float() * r / stab(zn)
        return xp * (t(up, sp) + t(down, sn)) + xn * (t(down, sp) + t(up, sn))
    ones = torch.ones_like(x)
    if name == "flat":
        w1 = torch.ones_like(w)
        return plain_vjp(layer, ones, w1, r / stab(fwd(layer, ones, w1, None)))
    if name == "w_square":
        return plain_vjp(layer, ones, w * w, r / stab(fwd(layer, ones, w * w, None)))
    low, high = torch.full_like(x, -1.5), torch.full_like(x, 2.5)
    zb = fwd(layer, x, w, None) - fwd(layer, low, wp, None) - fwd(layer, high, wn, None)
    s = r / stab(zb)
    return x * t(w, s) - low * t(wp, s) - high * t(wn, s)


RULES = {"epsilon": lambda: R.Epsilon(EPS), "z_plus": lambda: R.ZPlus(EPS),
         "alpha_beta": lambda: R.AlphaBeta(2, 1, EPS), "gamma": lambda: R.Gamma(0.25, EPS),
         "flat": lambda: R.Flat(EPS), "w_square": lambda: R.WSquare(EPS),
         "z_box": lambda: R.ZBox(torch.tensor(-1.5), torch.tensor(2.5), EPS)}


@pytest.mark.parametrize("name", list(RULES))
@pytest.mark.parametrize("layer_kind", ["conv", "linear"])
@pytest.mark.parametrize("inputs", ["nonneg", "mixed"])
def test_each_rule_is_its_formula(name, layer_kind, inputs):
    torch.manual_seed(0)
    layer = (nn.Conv2d(3, 5, 3, padding=1, stride=2) if layer_kind == "conv" else nn.Linear(7, 4)).requires_grad_(False)
    x = torch.randn(2, 3, 9, 9) if layer_kind == "conv" else torch.randn(2, 7)
    x = x.relu() if inputs == "nonneg" else x.clamp(-1.5, 2.5)
    z = fwd(layer, x, layer.weight, layer.bias)
    r = torch.randn_like(z)
    want = expected(name, layer, x, z, r)
    for hint in ([True, False] if inputs == "nonneg" else [False]):
        got = RULES[name]().relevance(layer, x, z, r, hint)  # type: ignore[attr-defined]
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5 * float(want.abs().max()))
