"""Persistent storage outside the controllers: admission, the default class, the local-path provisioner."""
