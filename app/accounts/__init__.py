"""Accounts: registration, login and tokens, profiles and user admin, sessions, recovery by mail."""
