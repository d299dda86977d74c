"""Gaussian input noise from a per-call generator (SmoothGrad; the same draws as a seeded global generator)."""

from __future__ import annotations

import torch


def draw_noise(x: torch.Tensor, n: int, sigma: float, seed: int) -> torch.Tensor:
    """n Gaussian noise tensors shaped like x [1, ...] with standard deviation `sigma`."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return (torch.randn((n, *x.shape[1:]), generator=gen) * sigma).to(device=x.device, dtype=x.dtype)
