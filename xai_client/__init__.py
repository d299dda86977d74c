"""A typed Python client and the `xai` command line for the explanation service."""

from xai_client.client import Client, image_bytes, make_input
from xai_client.types import Explanation, Job, ModelExplanation, Prediction, XaiError, decode_array

__all__ = ["Client", "Explanation", "Job", "ModelExplanation", "Prediction", "XaiError", "decode_array", "image_bytes",
           "make_input"]
