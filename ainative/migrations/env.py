"""Alembic's environment for the request log's schema (hand-written: Alembic runs this file by its path).

`ainative monitor migrate`, and a `RequestStore` opening an empty or older database, run the migrations through
`ainative.store.upgrade_to_head`, which hands over its connection inside a transaction that holds the schema lock;
`run_migrations` (in the store chapter, nbs/08a_store.ipynb) does the rest."""
from alembic import context

from ainative.store import run_migrations

run_migrations(context)
