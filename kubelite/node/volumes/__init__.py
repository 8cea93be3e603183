"""Pod volumes on the node (emptyDir, configMap, secret, downwardAPI, projected, hostPath):
one module per kind, the atomic writer they share, the token manager, and the per-pod
manager (manager.py) the pod worker drives."""
