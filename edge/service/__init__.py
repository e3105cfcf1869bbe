"""`nv-edge run`: the service (run.py), what its pipelines share (context.py), the image and audio pipelines,
liveness, sd_notify and journal logging. Imports everything below it; nothing imports it but edge.cli.
"""
