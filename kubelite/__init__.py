"""kubelite: a Kubernetes-compatible cluster in Python."""
