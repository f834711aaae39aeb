# Fieldcast backend image. One image, four roles: web (default), worker, scheduler, migrate.
#   docker build -t fieldcast .
#   docker run --rm fieldcast migrate
#   docker run -p 8000:8000 fieldcast web

FROM python:3.11-slim-bookworm AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md wsgi.py ./
COPY api/ api/
COPY media/ media/
COPY workers/ workers/
COPY notifications/ notifications/
COPY migrations/ migrations/
COPY fieldcast/ fieldcast/
RUN pip install .


FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    FIELDCAST_DATA_DIR=/var/lib/fieldcast \
    PROMETHEUS_MULTIPROC_DIR=/tmp/metrics \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 fieldcast \
 && useradd --system --uid 10001 --gid fieldcast \
        --home-dir /var/lib/fieldcast --no-create-home \
        --shell /usr/sbin/nologin fieldcast \
 && mkdir -p /var/lib/fieldcast /tmp/metrics \
 && chown fieldcast:fieldcast /var/lib/fieldcast /tmp/metrics

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY api/ api/
COPY media/ media/
COPY workers/ workers/
COPY notifications/ notifications/
COPY migrations/ migrations/
COPY fieldcast/ fieldcast/
COPY wsgi.py pyproject.toml ./
# gunicorn imports wsgi:app from the working directory, so compile these sources as well.
RUN python -m compileall -q api media workers notifications migrations fieldcast wsgi.py
COPY --chmod=0755 docker-entrypoint.sh /app/docker-entrypoint.sh

USER fieldcast:fieldcast

EXPOSE 8000

# Only the web role (gunicorn as PID 1) serves HTTP; the other roles report healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0) if b'gunicorn' not in open('/proc/1/cmdline', 'rb').read() else urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).close()"]

ENTRYPOINT ["/app/docker-entrypoint.sh"]
CMD ["web"]
