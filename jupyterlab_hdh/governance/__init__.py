"""Governance: who may do what (users, roles, tokens; later projects and permits)."""
