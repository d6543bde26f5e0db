# Multi-stage build: the builder compiles quickfix (no wheel on PyPI; ~10 minutes on one core)
# and the project into wheels; the runtime image installs only those wheels.
FROM python:3.11-slim-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ make \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels quickfix==1.16.0
COPY pyproject.toml README.md ./
COPY gateway gateway
COPY fix_specs fix_specs
RUN pip wheel --no-cache-dir --wheel-dir /wheels --find-links /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --create-home --uid 10001 sorgw
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels sor-gateway && rm -rf /wheels
WORKDIR /app
COPY config config
# Everything the processes write (audit SQLite file, FIX stores and dictionaries) goes under /app/var.
RUN mkdir -p /app/var && chown sorgw /app/var
USER sorgw
# 9876: the upstream FIX acceptor (upstream.port); 9464: /metrics, /healthz, /readyz (metrics.port).
EXPOSE 9876 9464
# Liveness of `sorgw run`; the slim image has no curl. `sorgw venue` serves no HTTP: compose disables this there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["sorgw"]
CMD ["run", "--config", "config/gateway.yaml"]
