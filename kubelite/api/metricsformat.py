"""How metrics.k8s.io writes usage quantities (canonical forms, as metrics-server's)."""
from __future__ import annotations


def cpu_quantity(nanocores: int) -> str:
    """Nanocores in canonical quantity form, as resource.NewScaledQuantity(n, Nano) prints."""
    if nanocores == 0:
        return "0"
    for suffix, scale in (("", 10**9), ("m", 10**6), ("u", 10**3)):
        if nanocores % scale == 0:
            return f"{nanocores // scale}{suffix}"
    return f"{nanocores}n"


def memory_quantity(value: int) -> str:
    """Bytes in canonical BinarySI form ("123Ki", "5Mi", "1000")."""
    if value == 0:
        return "0"
    for suffix, scale in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if value % scale == 0:
            return f"{value // scale}{suffix}"
    return str(value)
