"""MLServer runtime of the tests' tiny image CNN in numpy (runs inside MLServer's own environment: no torch).

`tests/tiny_models.build_image`: Conv2d(3, 8, 3, pad 1) - ReLU - Conv2d(8, 8, 3, pad 1, stride 2) - ReLU -
global average pool - Linear(8, classes), on NCHW FP32 input; returns logits. The weights come from the
`.npz` named by the model settings' `parameters.uri` (keys: the module's state-dict names).
"""

from __future__ import annotations

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int = 1) -> np.ndarray:
    """Zero-padded ('same' for 3x3) convolution: x [B, C, H, W], weight [O, C, k, k] -> [B, O, H', W']."""
    k = weight.shape[-1]
    pad = k // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    return np.einsum("bchwij,ocij->bohw", windows, weight, optimize=True) + bias[None, :, None, None]


class TinyImageCNN(MLModel):
    async def load(self) -> bool:
        weights = np.load(await get_model_uri(self._settings))
        self.w = {name: weights[name].astype(np.float32) for name in weights.files}
        return True

    def logits(self, x: np.ndarray) -> np.ndarray:
        w = self.w
        h = np.maximum(conv2d(x, w["0.0.weight"], w["0.0.bias"]), 0.0)
        h = np.maximum(conv2d(h, w["0.2.weight"], w["0.2.bias"], stride=2), 0.0)
        return h.mean(axis=(2, 3)) @ w["3.weight"].T + w["3.bias"]

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        if len(payload.inputs) != 1:
            raise InferenceError(f"expected one input, got {len(payload.inputs)}")
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32)
        channels = self.w["0.0.weight"].shape[1]
        if x.ndim != 4 or x.shape[1] != channels:
            raise InferenceError(f"expected NCHW input with {channels} channels, got shape {list(x.shape)}")
        out = self.logits(x).astype(np.float32)
        return InferenceResponse(model_name=self.name, model_version=self.version,
                                 outputs=[NumpyCodec.encode_output(name="logits", payload=out)])
