"""`nv-edge`: the command line, one module per command (classify, info, listen, publish, config, doctor,
run), the dispatcher (main.py) and what the commands share (arguments.py, table.py, progress.py).
The top: it may import any package of edge/, and nothing of edge/ imports it.
"""
