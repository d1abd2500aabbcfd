# The wadispatch image: the worker, beat, Flower and the simulator all run from it
# (docker-compose.yml picks the command). Configuration comes from the environment only:
# no .env file is copied in.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package is built from (pyproject names README.md as its readme): workers/ and
# tasks/ install as the one package `wadispatch`. The repository's celeryconfig.py is not copied:
# a deployment's own Celery settings module is mounted and named by WADISPATCH_CELERY_CONFIG.
COPY pyproject.toml README.md ./
COPY workers ./workers
COPY tasks ./tasks
RUN pip install ".[postgres]"

# A non-root user (10001, "wadispatch"); /var/lib/wadispatch is the one place it writes
# (beat's schedule file).
RUN groupadd --gid 10001 wadispatch \
    && useradd --create-home --uid 10001 --gid 10001 wadispatch \
    && mkdir -p /var/lib/wadispatch \
    && chown wadispatch:wadispatch /var/lib/wadispatch
USER 10001:10001

CMD ["wadispatch", "worker"]
