"""Surveys: orthomosaics (GeoTIFFs of a drone flight) scanned in windows at the model's training scale,
every tile placed on the map, alerting tiles merged into areas (`nv-edge scan`). Needs the `survey`
extra (rasterio, pyproj, shapely)."""
