"""The web page of `nv-base serve` (app.py), its login (auth.py), JSON API (api.py) and queries."""
