"""Every method, imported explicitly so that the registry sees it."""

from explainers.methods import (  # noqa: F401
    anchors,
    deconvnet,
    gradcam,
    gradcam_plusplus,
    guided_backprop,
    guided_gradcam,
    input_x_gradient,
    integrated_gradients,
    kernel_shap,
    layercam,
    lime,
    occlusion,
    rise,
    saliency,
    scorecam,
    smoothgrad,
)
