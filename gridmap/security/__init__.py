"""Security: roles and scopes, the audit log, rate limits."""
