"""Small manifest snippets that several tests install, so each shape is written once."""

from __future__ import annotations


def deployment(name: str, image: str = "nginx:1.27", pod_app: str | None = None) -> str:
    """A one-container Deployment selecting app=NAME; POD_APP gives the pod template another label (invalid)."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {pod_app or name}}}}}
    spec: {{containers: [{{name: app, image: "{image}"}}]}}
"""
