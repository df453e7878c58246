"""gunicorn settings for both the floor and the app in `make bench`; the harness passes -b."""

workers = 2
worker_class = "sync"
timeout = 30
accesslog = None  # an access log line per request would be part of what we measure
errorlog = "-"
loglevel = "warning"
control_socket_disable = True
