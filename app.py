"""Entry point for `gunicorn app:app`. A bad setting stops start-up with one line naming it."""

import sys

from tbr.config import ConfigError
from tbr.web import wsgi_app

try:
    app = wsgi_app()
except ConfigError as e:
    print(f"tbr: configuration error: {e}", file=sys.stderr)
    sys.exit(1)
