"""The built-in ingress controller (``kubelite server`` runs it; ``--disable ingress`` does not)."""
