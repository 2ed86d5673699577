"""The workspace ledger: the only package that speaks SQL (SQLAlchemy; SQLite by default,
PostgreSQL by URL).

:mod:`.ledger` holds the schema and the :class:`~.ledger.Ledger`; :mod:`.lock` the leases that
let one process own an iteration. Query functions are grouped by concept; each public one
runs in one transaction.
"""
