"""metrics.k8s.io: node and pod usage scraped from the node agents, served read-only.

``scraper`` collects each node's ``/stats/summary`` on a fixed period and keeps the last
two samples, from which it derives CPU rates (as metrics-server does); ``api`` answers
``/apis/metrics.k8s.io/v1beta1`` from what the scraper holds. Nothing is stored.
"""
