"""Cluster DNS: the ``kube-dns`` Service answered by kubelite itself (k3s ships CoreDNS).

- ``index.py``: the cluster as DNS sees it, rebuilt from the Service, EndpointSlice and
  Namespace informers (an API client like every other component);
- ``records.py``: the answers for the cluster domain and the reverse zones, shaped the way
  CoreDNS's ``kubernetes`` plugin shapes them (NXDOMAIN vs NODATA, SOA in authority);
- ``forward.py``: every other name goes to the upstream resolvers (never off the machine
  when ``KUBELITE_OFFLINE=1``);
- ``server.py``: the UDP (with truncation) and TCP listeners;
- ``resolvconf.py``: a pod's ``resolv.conf`` for its ``dnsPolicy`` and ``dnsConfig``, as the
  kubelet composes it;
- ``component.py``: wiring for ``kubelite server`` (the listen address, the kube-dns Service
  and its endpoints).
"""
