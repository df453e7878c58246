"""Where a request came from, as the app believes it: the public origin every URL it builds starts with,
and the client's address and scheme, from forwarded headers only when a configured proxy sent them."""

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(allowed: str) -> list[Network] | None:
    """The networks FORWARDED_ALLOW_IPS names (an address is a network of one); None for "*", any
    peer. ValueError for an entry that is neither."""
    entries = [entry.strip() for entry in allowed.split(",") if entry.strip()]
    if "*" in entries:
        return None
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


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


class TrustedProxies:
    """WSGI middleware: X-Forwarded-For and X-Forwarded-Proto count (through ProxyFix, for `hops`
    proxies) only when the peer is one of the configured proxies. From anyone else they are the
    caller's own claim, and the peer's address is the client's."""

    def __init__(self, app: WSGIApplication, hops: int, allowed: str) -> None:
        self.direct = app
        self.proxied = ProxyFix(app, x_for=hops, x_proto=hops)
        self.networks = proxy_networks(allowed)

    def trusts(self, peer: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:  # no IP peer (a Unix socket): nothing says it is the proxy
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        app = self.proxied if self.trusts(environ.get("REMOTE_ADDR", "")) else self.direct
        return app(environ, start_response)
