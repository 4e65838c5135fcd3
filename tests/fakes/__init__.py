"""Local stand-ins for external services, run as real HTTP servers."""
