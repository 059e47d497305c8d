"""Governance: approval rules and requests, resource rules, quotas, usage, cost and cost limits."""
