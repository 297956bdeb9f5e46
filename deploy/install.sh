#!/usr/bin/env bash
# The image's build step: a virtualenv at PREFIX holding tbr and its locked dependencies, nothing else.
# Usage: deploy/install.sh PREFIX   (the Dockerfile runs it; so does tests/test_image.py)
set -euo pipefail
prefix=${1:?usage: deploy/install.sh PREFIX}
case $prefix in /*) ;; *) prefix=$PWD/$prefix ;; esac
cd "$(dirname "$0")/.."
python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --disable-pip-version-check -c requirements.lock .
