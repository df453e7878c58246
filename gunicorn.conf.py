"""gunicorn settings, from the environment (`gunicorn -c gunicorn.conf.py wsgi:app`)."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2, 4)))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
accesslog = "-"
# gunicorn >= 25 opens a control socket under $HOME by default; a read-only container has no writable $HOME.
control_socket_disable = True
