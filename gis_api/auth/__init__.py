"""Accounts, roles, data classification, masking and the audit log (issue 10).

Pure parts (roles, classification, masking, tokens, passwords, rate limits) take plain data and raise
`geo.errors` classes; `store.py` owns the SQL; `deps.py` holds the FastAPI dependencies for the wiring.
"""
