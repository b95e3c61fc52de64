"""Talking to Kestra: the HTTP client and its transport rules, bulk endpoints, the live state,
the KV store, the one-run-at-a-time lease and the inventory of what this promotion manages.
Every request the promotion sends to a Kestra instance goes through this package.
"""
