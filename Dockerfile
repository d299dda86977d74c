# The explanation service: one image, two commands.
#   API (default):  docker run -p 8000:8000 xai-service            (no XAI_REDIS_URL: embedded Redis + 1 worker)
#   worker:         docker run --gpus device=0 -e XAI_REDIS_URL=redis://:PASSWORD@HOST:6379/0 xai-service python -m workers
#
# Base image: plain Python plus the torch/torchvision wheels pinned in constraints.txt (2.14.1 / 0.29.1).
# Those wheels are CUDA 13.0 builds that carry their CUDA runtime, cuDNN, cuBLAS and NCCL as
# nvidia-* wheels, so they are the whole CUDA stack this service needs; the driver comes from the
# host through the NVIDIA container toolkit. A pytorch/pytorch or nvidia/cuda base would put a
# second torch or a second CUDA runtime (several GB) under the pinned one, and any drift between
# the base's torch and the pin would make pip install torch again. Without a GPU (or without the
# toolkit) the same image runs on CPU: XAI_DEVICE=auto picks cuda:0 only when one is visible.
FROM python:3.11-slim-bookworm

# NVIDIA_DRIVER_CAPABILITIES: the toolkit mounts the driver's compute (CUDA) and utility (NVML)
# libraries; compose's `capabilities: [gpu]` and `--gpus` do not set it themselves.
# NVIDIA_REQUIRE_CUDA: a GPU container on a driver too old for CUDA 13.0 (< R580) fails to start
# instead of silently running on CPU; set NVIDIA_DISABLE_REQUIRE=1 to override. Both are read only
# when the container is started with GPUs. GPUs are chosen per container (--gpus, compose's device
# reservation), so NVIDIA_VISIBLE_DEVICES is deliberately not set here.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=13.0"

# A fixed non-root user; the image's files stay root-owned and read-only to it. /var/lib/xai is its
# only writable place: the embedded Redis' socket and append-only file when XAI_REDIS_URL is unset.
RUN groupadd --system --gid 10001 xai \
    && useradd --system --uid 10001 --gid xai --create-home --home-dir /home/xai --shell /usr/sbin/nologin xai \
    && install -d -o xai -g xai -m 0750 /var/lib/xai

WORKDIR /app

# Dependencies first, from pyproject.toml's list under constraints.txt's pins, so that a code change
# does not reinstall torch. The project itself is not pip-installed: its packages are copied below
# and found through PYTHONPATH.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -c constraints.txt -r /tmp/requirements.txt \
    && pip check \
    && rm /tmp/requirements.txt

# The shipped demo bundles (the default registry when XAI_MODEL_DIR is not set), then the code and the
# sample inputs the page offers (/examples).
COPY models ./models
COPY demos ./demos
COPY explainers ./explainers
COPY app ./app
COPY workers ./workers
COPY jobqueue ./jobqueue
COPY scripts ./scripts
COPY examples ./examples

# MALLOC_*: keep freed memory in the process instead of handing it back to the kernel after every
# batch: batched forwards get 1.4-1.9x faster (see PERFORMANCE.md). Set image-wide because the API
# runs the sync methods' forward passes too; the price is that a process keeps its peak memory.
ENV PYTHONPATH=/app \
    XAI_HOST=0.0.0.0 \
    XAI_PORT=8000 \
    XAI_MODEL_DIR=/app/models \
    XAI_STATE_DIR=/var/lib/xai \
    MALLOC_MMAP_MAX_=0 \
    MALLOC_TRIM_THRESHOLD_=100000000000

# Numeric, so that runtimes (Kubernetes' runAsNonRoot) can tell it is not root.
USER 10001:10001
EXPOSE 8000

# Liveness of the API (the default command). A worker has no HTTP port: docker-compose.yml gives
# the worker its own check; with plain `docker run ... python -m workers` pass --no-healthcheck.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('XAI_PORT', '8000'), timeout=4)"]

CMD ["python", "-m", "app"]
