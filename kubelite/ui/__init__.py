"""Terminal views for learners (rich): what the cluster is doing, drawn live from informers."""
