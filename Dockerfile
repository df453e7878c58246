# The API image: gunicorn serving wsgi:app as a non-root user; no secrets inside.
# The base image, named once and pinned by tag and multi-arch index digest; Dependabot (docker) updates
# both. A literal FROM, because Dependabot cannot see an image chosen by a build arg. A machine without
# registry access builds from a local stand-in: scripts/compose-smoke rewrites this one line in a copy.
FROM python:3.12-slim@sha256:229a2c5bfa27522db7815ea81f9bed70af17ccb9de9fc7ad142b1877b5830d36 AS base

# Build stage: the pinned dependencies into a venv (compilers, caches and pip's work stay here).
FROM base AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

# Runtime stage: the venv and the code, nothing else.
FROM base
# MALLOC_MMAP_THRESHOLD_: glibc maps each argon2 buffer (7 MiB) and unmaps it after the hash, but then
# raises its mmap threshold past that size, so later buffers come from the heap, which it keeps: every
# worker would stay 7 MiB bigger. A fixed threshold stops that. glibc reads it once, when the process
# starts, so it must be in the environment at exec (here, or the pod's env); gunicorn.conf.py is too late.
ENV PATH=/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi \
    GUNICORN_BIND=0.0.0.0:8000 \
    MALLOC_MMAP_THRESHOLD_=131072
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
COPY --from=build /venv /venv
WORKDIR /srv
# Code stays owned by root: the app user can run it but not change it.
COPY app app
COPY migrations migrations
COPY wsgi.py gunicorn.conf.py ./
# Compile once here; at run time the root filesystem is read-only.
RUN python -m compileall -q app migrations wsgi.py
USER 10001:10001
EXPOSE 8000
# Liveness only (no database), with python because the image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/api/v1/health/live', timeout=4)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
