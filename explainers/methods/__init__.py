"""Every method, imported explicitly so that the registry sees it."""

from explainers.methods import (  # noqa: F401
    deconvnet,
    gradcam,
    gradcam_plusplus,
    guided_backprop,
    guided_gradcam,
    input_x_gradient,
    integrated_gradients,
    layercam,
    saliency,
    smoothgrad,
)
