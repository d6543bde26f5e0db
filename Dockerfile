# Multi-stage build: the builder makes wheels of the project and its dependencies, the runtime image installs
# only those wheels into a virtualenv at /opt/venv. Both stages use BASE_IMAGE: Docker Hub's python image by
# default, or a Debian bookworm base made without Docker Hub by scripts/build-base-image.sh:
#   docker build --build-arg BASE_IMAGE=sorgw-base:bookworm -t sor-gateway .
# Either base works: everything runs as `python3` and pip runs inside the virtualenv (PEP 668 keeps it off
# Debian's own python). wheels/ (README there) may hold prebuilt wheels; without a quickfix wheel the builder
# compiles it, about 10 minutes on one core. PIP_NO_INDEX=1 builds from wheels/ alone, with no package index.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG PIP_NO_INDEX=0
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY wheels wheels
RUN if ! ls wheels/quickfix-1.16.0-*.whl >/dev/null 2>&1; then \
      if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends g++ make && rm -rf /var/lib/apt/lists/*; \
      fi; \
      /opt/venv/bin/pip install --no-cache-dir wheel \
      && /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir wheels quickfix==1.16.0; \
    fi
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY fix_specs fix_specs
RUN /opt/venv/bin/pip wheel --no-cache-dir --wheel-dir /wheels --find-links wheels .

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 sorgw
COPY --from=builder /wheels /wheels
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels sor-gateway \
 && rm -rf /wheels
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY config config
# Everything the processes write (audit SQLite file, FIX stores and dictionaries) goes under /app/var.
RUN mkdir -p /app/var && chown sorgw /app/var
USER sorgw
# 9876: the upstream FIX acceptor (upstream.port); 9464: /metrics, /healthz, /readyz (metrics.port).
EXPOSE 9876 9464
# GET /healthz on metrics.host:metrics.port of the config PID 1 runs (`sorgw run --config ...`, with its SORGW__
# overrides). `sorgw venue` serves no HTTP: compose disables the check there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["sorgw", "healthcheck"]
ENTRYPOINT ["sorgw"]
CMD ["run", "--config", "config/gateway.yaml"]
