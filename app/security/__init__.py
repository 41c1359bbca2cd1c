"""Authentication and client identification: API keys, JWTs, the client address."""
