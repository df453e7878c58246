"""Kubernetes probes as kubelet runs them, from the rendered manifests, against a server on loopback."""

import http.client
import socket
from typing import Any

from tests.support.app import ROOT
from tests.support.kustomize import kustomize


def api_container() -> dict[str, Any]:
    """The api Deployment's container, as the example overlay renders it."""
    (deployment,) = [
        o
        for o in kustomize(ROOT / "deploy" / "k8s" / "overlays" / "example")
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "api"
    ]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def probe_passes(probe: dict[str, Any], port: int) -> bool:
    """One run of an httpGet or tcpSocket probe: kubelet's rules (2xx or 3xx within timeoutSeconds; a
    TCP connection within timeoutSeconds)."""
    timeout = probe.get("timeoutSeconds", 1)
    try:
        if "tcpSocket" in probe:
            socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
            return True
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", probe["httpGet"]["path"], headers={"User-Agent": "kube-probe/1.31"})
            return 200 <= connection.getresponse().status < 400
        finally:
            connection.close()
    except (OSError, http.client.HTTPException):
        return False
