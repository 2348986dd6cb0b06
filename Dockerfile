# The coordinator service and the worker of the GCP backend (docs/cloud.md), from the wheel only.
# Not built on the development machines (no Docker engine there): what was run is listed in docs/cloud.md.
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
RUN useradd --create-home --uid 10001 nbaprops
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "nbaprops[service,gcp]" && rm -rf /wheels
USER nbaprops
WORKDIR /home/nbaprops
ENV NBAPROPS_BACKEND=gcp \
    NBAPROPS_DB_PATH=/home/nbaprops/var/nbaprops.duckdb \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["nbaprops"]
CMD ["worker"]
