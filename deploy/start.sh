#!/usr/bin/env bash
# The image's start command: gunicorn app:app from the app directory (so gunicorn.conf.py applies),
# with the gunicorn of the virtualenv deploy/install.sh made. exec: gunicorn gets SIGTERM itself.
# Usage: deploy/start.sh [PREFIX]   (default /opt/venv, where the Dockerfile installs)
set -euo pipefail
prefix=${1:-/opt/venv}
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
cd "$(dirname "$0")/.."
exec "$prefix/bin/gunicorn" app:app
