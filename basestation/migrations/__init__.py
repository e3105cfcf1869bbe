"""The base station's schema, one numbered module per change (basestation/migrate.py runs them)."""
