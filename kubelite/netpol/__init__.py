"""NetworkPolicy enforcement in the kernel: nftables sets and chains kept in step with the API."""
