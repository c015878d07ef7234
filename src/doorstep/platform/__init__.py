"""The shared kernel: database, auth, access, audit, errors, observability. No business domain."""
