"""Render a kustomization offline, for the tests: the small part of kustomize these manifests use.

Supported: resources (files and folders), namespace, images, and strategic-merge patches in which
lists are replaced whole, except the ones merged by name below. Anything else in a kustomization
is refused, so a manifest can never silently render differently here than in `kubectl kustomize`
(the tests also compare the two when kubectl is installed).

    python deploy/k8s/render.py deploy/k8s/overlays/example
"""

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "IngressClass"}
MERGED_BY_NAME = {"containers", "initContainers", "volumes", "volumeMounts", "env"}


def load(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def merge(base: Any, patch: Any, key: str = "") -> Any:
    """A strategic merge patch, as kustomize applies it for the fields used here."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if key in MERGED_BY_NAME and isinstance(base, list) and isinstance(patch, list):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = merge(by_name[item["name"]], item) if item["name"] in by_name else item
        return list(by_name.values())
    return patch


def identity(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def set_images(node: Any, images: list[dict[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                for container in value:
                    container["image"] = new_image(container["image"], images)
            else:
                set_images(value, images)
    elif isinstance(node, list):
        for item in node:
            set_images(item, images)


def image_name(image: str) -> str:
    """The image without its tag or digest (a registry port's colon is not a tag)."""
    name = image.split("@")[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def new_image(image: str, images: list[dict[str, str]]) -> str:
    name = image_name(image)
    for rule in images:
        if rule["name"] == name:
            new = rule.get("newName", name)
            if "digest" in rule:
                return f"{new}@{rule['digest']}"
            return f"{new}:{rule['newTag']}" if "newTag" in rule else new
    return image


def render(folder: Path) -> list[Obj]:
    """The objects a kustomization folder produces, in resource order."""
    spec = load(folder / "kustomization.yaml")[0]
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise ValueError(f"{folder}: kustomization fields this renderer does not implement: {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in spec.get("resources", []):
        path = folder / entry
        objects += render(path) if path.is_dir() else [copy.deepcopy(obj) for obj in load(path)]
    for patch_ref in spec.get("patches", []):
        for patch in load(folder / patch_ref["path"]):
            matches = [i for i, obj in enumerate(objects) if identity(obj) == identity(patch)]
            if len(matches) != 1:
                raise ValueError(f"{folder}: patch {identity(patch)} matches {len(matches)} objects")
            objects[matches[0]] = merge(objects[matches[0]], patch)
    for obj in objects:
        if "namespace" in spec and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = spec["namespace"]
        set_images(obj, spec.get("images", []))
    return objects


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(Path(sys.argv[1])), sort_keys=False), end="")
