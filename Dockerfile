# syntax=docker/dockerfile:1
# tbr's image. Its build and start steps are deploy/install.sh and deploy/start.sh, which
# tests/test_image.py runs without Docker, against this file's COPY, ENV and CMD lines.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# A system user without a home; /data (the SQLite database, and the credentials file the /setup
# flow writes beside it) is the only place it can write. A new Docker volume on /data starts with
# this ownership, and Fly mounts its volume for the image's USER. It has a shell so that
# `fly ssh console -u tbr -C "tbr status"` works: run as root, a command could leave root-owned
# files in /data.
RUN groupadd --system --gid 10001 tbr \
 && useradd --system --uid 10001 --gid tbr --no-create-home --home-dir /nonexistent --shell /bin/sh tbr \
 && mkdir /data \
 && chown tbr:tbr /data

WORKDIR /app
COPY pyproject.toml requirements.lock README.md LICENSE ./
COPY app.py gunicorn.conf.py app-manifest.json ./
COPY tbr/ tbr/
COPY deploy/ deploy/
RUN deploy/install.sh /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    TBR_DB=/data/tbr.db \
    TBR_LOG_FORMAT=json \
    PORT=8080
USER 10001:10001
VOLUME /data
EXPOSE 8080
# gunicorn stops gracefully on SIGTERM (SIGINT would be its quick shutdown); give it 30 s
# (`docker stop -t 30`, fly.toml's kill_timeout): graceful_timeout is 20.
STOPSIGNAL SIGTERM
CMD ["/app/deploy/start.sh", "/opt/venv"]
