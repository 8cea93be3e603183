"""API aggregation (upstream's kube-aggregator, inside the API server): APIServices,
their availability, proxying to extension API servers and their part of discovery."""
