"""Security headers on every response the app makes, errors included."""

from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask

# A JSON API is never a document: nothing may load, frame or run from its responses.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The Swagger UI page runs only our own files; restx's template carries inline <style> and the
# UI draws data: images, which is all that is let in beyond 'self'.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
ALWAYS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
]
NO_STORE = ("Cache-Control", "no-store")  # tokens and personal data must not be cached
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")

Headers = list[tuple[str, str]]


class SecureHeaders:
    """WSGI middleware adding the headers as the answer starts; a handler that set one on purpose keeps its
    own. Here rather than in an after_request hook, where werkzeug's header lookups were among the
    costliest work of a small request."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        api = environ.get("PATH_INFO", "").startswith("/api/")
        # Behind a TLS proxy the scheme follows X-Forwarded-Proto (PROXY_HOPS: TrustedProxies runs first).
        tls = environ.get("wsgi.url_scheme") == "https"

        def start(status: str, headers: Headers, exc_info: Any = None) -> Any:
            present = {name.lower(): value for name, value in headers}
            html = present.get("content-type", "").startswith("text/html")
            wanted = [*ALWAYS, ("Content-Security-Policy", DOCS_CSP if html else API_CSP)]
            if api:
                wanted.append(NO_STORE)
            if tls:
                wanted.append(HSTS)
            headers.extend(header for header in wanted if header[0].lower() not in present)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


def init_app(app: Flask) -> None:
    """Wrap the app: call it before the proxy middleware wraps it, so the scheme is the client's."""
    app.wsgi_app = SecureHeaders(app.wsgi_app)  # type: ignore[method-assign]
