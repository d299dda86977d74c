"""A weighted layer's forward with other weights, and its transpose (the input gradient) without autograd."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Weighted = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d


def forward(layer: Weighted, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The layer applied to `x` with `weight` and `bias` in place of its own."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, bias)
    return layer._conv_forward(x, weight, bias)


def transpose(layer: Weighted, x: torch.Tensor, weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """d <grad, layer(x; weight)> / dx: the transposed layer applied to `grad` (shaped like the output)."""
    if isinstance(layer, nn.Linear):
        return grad @ weight
    if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
        with torch.enable_grad():  # 'same' padding or a padding mode: let autograd transpose the padding too
            xr = x.detach().requires_grad_(True)
            (out,) = torch.autograd.grad(layer._conv_forward(xr, weight, None), xr, grad)
        return out
    dims = x.dim() - 2
    return torch.ops.aten.convolution_backward(
        grad, x, weight, None, list(layer.stride), list(layer.padding), list(layer.dilation), False, [0] * dims,
        layer.groups, [True, False, False])[0]


def weight_statistic(layer: Weighted, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Sum over samples and positions of input patches times `grad` (shaped like the output): weight-shaped.

    For a linear layer over [..., in]: grad^T x. It is the weight gradient of <grad, layer(x)>.
    """
    if isinstance(layer, nn.Linear):
        return grad.reshape(-1, grad.shape[-1]).T @ x.reshape(-1, x.shape[-1])
    if isinstance(layer.padding, str) or layer.padding_mode != "zeros":
        with torch.enable_grad():
            w = layer.weight.detach().requires_grad_(True)
            (out,) = torch.autograd.grad(layer._conv_forward(x, w, None), w, grad)
        return out
    dims = x.dim() - 2
    return torch.ops.aten.convolution_backward(
        grad, x, layer.weight, None, list(layer.stride), list(layer.padding), list(layer.dilation), False, [0] * dims,
        layer.groups, [False, True, False])[1]
