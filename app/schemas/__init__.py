"""Request and response bodies of the HTTP contract (no torch here)."""

from app.schemas.errors import AUTH, ERROR_RESPONSES, error_responses
from app.schemas.requests import (
    COLORMAP_ENUM,
    ExplainRequest,
    Input,
    OutputSpec,
    PatternsRequest,
    PredictRequest,
    check_unicode,
)
from app.schemas.responses import (
    EncodedArray,
    ErrorBody,
    ErrorDetail,
    ExampleInfo,
    ExampleList,
    Explanation,
    JobAccepted,
    JobLinks,
    JobList,
    JobState,
    JobSummary,
    MethodInfo,
    MethodList,
    ModelInfo,
    ModelList,
    ModelState,
    PatternsResult,
    Prediction,
    PredictResponse,
    QueueState,
    Readiness,
    Sample,
    Status,
    WorkerState,
)

__all__ = ["AUTH", "COLORMAP_ENUM", "ERROR_RESPONSES", "EncodedArray", "ErrorBody", "ErrorDetail", "ExampleInfo",
           "ExampleList", "ExplainRequest", "Explanation", "Input", "JobAccepted", "JobLinks", "JobList", "JobState",
           "JobSummary", "MethodInfo", "MethodList", "ModelInfo", "ModelList", "ModelState", "OutputSpec",
           "PatternsRequest", "PatternsResult", "PredictRequest", "PredictResponse", "Prediction", "QueueState",
           "Readiness", "Sample", "Status", "WorkerState", "check_unicode", "error_responses"]
