"""kubelite's own conformance suite: upstream's api-machinery behaviours for every served resource.

The suite asks the server which resources it serves (its own discovery documents) and runs
each generic spec on each resource whose advertised verbs allow it. A resource with no
sample object in ``samples.py`` fails the suite, so every new kind joins the checks.
"""
