# syntax=docker/dockerfile:1
#
# The operator's image: `docker build -t asynctask-operator:0.1.0 .`
#
# Reproducible inputs: an exact base image tag, and every Python package pinned to an
# exact version and its sha256 hashes (requirements.lock for the runtime: the operator's and the
# gateway's extras, not the kubectl plugin's, docs/adr/0022-an-extra-per-program.md, and the [otel]
# extra: the OpenTelemetry SDK and OTLP/HTTP exporter, used only when OTEL_EXPORTER_OTLP_ENDPOINT
# is set, docs/adr/0020-opentelemetry-tracing.md; and the [archive] extra: SQLAlchemy, asyncpg,
# aiosqlite and Alembic, for asynctask-archive, docs/archive.md;
# requirements-build.lock for the tools that build the wheel; both from `scripts/lock`).
# Wheels only: nothing is compiled, so the slim image needs no compiler.
#
# The base image by digest too, where a registry can be reached (none could where this was last
# edited, so the exact tag stays): resolve the tag's multi-platform index and append its digest,
#   docker buildx imagetools inspect python:3.11.17-slim-bookworm --format '{{json .Manifest.Digest}}'
#   (or `crane digest python:3.11.17-slim-bookworm`, or `skopeo inspect --raw` piped to sha256sum)
# ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm@sha256:<those 64 hex digits>. tests/unit/test_image.py
# accepts both forms; `docker build --build-arg PYTHON_IMAGE=...` overrides it for one build.
ARG PYTHON_IMAGE=python:3.11.17-slim-bookworm

# ---------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PIP_ONLY_BINARY=:all:

WORKDIR /src

# Build tools in a venv of their own, never shipped.
COPY requirements-build.lock ./
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --require-hashes --no-deps -r requirements-build.lock

# Runtime dependencies: a layer that changes only when the lock does. The runtime venv
# has no pip or setuptools; the build venv's pip installs into it.
COPY requirements.lock ./
RUN python -m venv --without-pip /opt/venv \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --require-hashes --no-deps -r requirements.lock

# What the image never runs, cut before the runtime stage copies the venv (`python -m
# bench.image_size` measures /opt/venv: 181.5 MB before these two steps, 117.3 MB after; docs/performance.md).
# kubernetes/aio (63 MB): the client's asyncio twin, which nothing imports: the operator calls the
# synchronous client in threads (ADR 0002). A move to kubernetes.aio deletes this one step.
RUN rm -r /opt/venv/lib/python3.*/site-packages/kubernetes/aio
# The test suites some packages ship inside themselves (jsonschema, websocket, referencing: 1.4 MB).
RUN find /opt/venv/lib/python3.*/site-packages -type d -name tests -prune -exec rm -r {} +

# The operator itself, as a wheel built with the pinned tools (no build isolation: no
# unpinned downloads).
COPY pyproject.toml README.md LICENSE ./
COPY operator/ operator/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
 && /opt/build/bin/pip --python /opt/venv/bin/python install --no-deps /tmp/wheels/*.whl \
 && /opt/build/bin/pip --python /opt/venv/bin/python check \
 && /opt/venv/bin/asynctask-operator --version \
 && /opt/venv/bin/asynctask-gateway --version \
 && /opt/venv/bin/asynctask-archive --version \
 && /opt/venv/bin/python -c "import asyncpg, aiosqlite, sqlalchemy.ext.asyncio, alembic" \
 && /opt/venv/bin/python -c "import opentelemetry.exporter.otlp.proto.http.trace_exporter, opentelemetry.sdk.trace"

# ---------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="asynctask-operator" \
      org.opencontainers.image.description="Declarative asynchronous tasks for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=builder /opt/venv /opt/venv

# HOME: UID 10001 has no home directory; /tmp is the one writable place (an emptyDir in the
# chart, whose root filesystem is read-only). No .pyc writes at run time: pip compiled them.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# Numeric, so that Kubernetes can check runAsNonRoot; matches the chart's securityContext.
USER 10001:10001

# /healthz, /readyz and the /v1/ task report endpoint (--http-port); the gateway's port
# (asynctask-gateway, the chart's gateway Deployment: command asynctask-gateway).
EXPOSE 8080 8000

ENTRYPOINT ["asynctask-operator"]
CMD ["run"]
