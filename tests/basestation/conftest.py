"""The base-station tests run on both databases: the `database` fixture gives a SQLite file, a
PostgreSQL database with PostGIS (when the server has it) and one without."""

from pgserver import database, pg_databases, pg_server  # noqa: F401  (fixtures)
