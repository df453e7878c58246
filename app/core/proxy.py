"""Where a request came from, as the app believes it: the public origin every URL it builds starts with."""

from collections.abc import Iterable
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment


def origin_problem(url: str) -> str | None:
    """Why a PUBLIC_URL is not an http(s) origin (scheme, host, optional port, nothing else), or None."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        return "its port is not a number"
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return "it needs http:// or https:// and a host"
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username or parts.password:
        return "it is an origin only: no path, query, fragment or credentials"
    return None


class PublicOrigin:
    """WSGI middleware: the request's scheme and host become PUBLIC_URL's before Flask sees them, so
    every URL the app or Werkzeug builds (Link headers, redirects) starts with it, whatever Host or
    X-Forwarded-Host a caller sent."""

    def __init__(self, app: WSGIApplication, url: str) -> None:
        parts = urlsplit(url)
        self.app = app
        self.environ = {
            "wsgi.url_scheme": parts.scheme,
            "HTTP_HOST": parts.netloc,
            "SERVER_NAME": parts.hostname or "",
            "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ.update(self.environ)
        return self.app(environ, start_response)
