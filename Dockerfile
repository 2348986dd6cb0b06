# The coordinator service and the worker of the GCP backend (docs/cloud.md), from the wheel only.
# No Docker engine on the development machines: `make image-check` (tools/image_check.py) plays this file on a
# debootstrapped Debian bookworm with Debian's python3.11 and runs the image's commands (docs/cloud.md).
#   docker build -t nbaprops .
#   docker run nbaprops serve --host 0.0.0.0         # the coordinator (NBAPROPS_BACKEND=gcp, …)
#   docker run nbaprops worker                         # a pull worker

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels . \
    && pip wheel --no-cache-dir --wheel-dir /wheels "$(ls /wheels/nbaprops-*.whl)[service,gcp]"

FROM python:3.11-slim
# LightGBM's lib_lightgbm.so links the system's OpenMP runtime, libgomp.so.1, which python:3.11-slim lacks:
# without it `import lightgbm` fails and worker and serve die at start.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 nbaprops
COPY --from=build /wheels /wheels
# The smoke import fails the build, not the first start, when a shared library is missing.
RUN pip install --no-cache-dir --no-index --find-links /wheels "nbaprops[service,gcp]" && rm -rf /wheels \
    && python -c "import nbaprops.cli, lightgbm"
USER nbaprops
WORKDIR /home/nbaprops
ENV NBAPROPS_BACKEND=gcp \
    NBAPROPS_DB_PATH=/home/nbaprops/var/nbaprops.duckdb \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["nbaprops"]
CMD ["worker"]
