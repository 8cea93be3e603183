"""Authorization, as kube-apiserver's ``--authorization-mode=Node,RBAC`` with the
``system:masters`` group always allowed.

One concern per module:

* ``attributes`` — what a request asks to do (verb, resource, namespace, name or path);
* ``rules`` — RBAC rule matching and coverage, as pure functions;
* ``chain`` — decisions, the ordered chain of authorizers, upstream's 403 messages;
* ``rbac`` — the RBAC authorizer over an in-memory snapshot of the store;
* ``node`` — the Node authorizer and NodeRestriction admission for node agents;
* ``escalation`` — nobody grants permissions they do not hold;
* ``impersonation`` — ``kubectl --as``;
* ``reviews`` — the access, rules, self and token review APIs;
* ``policy`` / ``bootstrap`` — the default roles and bindings (data), written at start.

``apiserver/security.py`` wires them into the request path.
"""
