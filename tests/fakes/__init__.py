"""Local servers that speak the protocols of outside services, for the official clients to talk
to in tests (the sandbox has no internet, and a mock inside the client would test nothing)."""
