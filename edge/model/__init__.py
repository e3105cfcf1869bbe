"""A model bundle and its runtime: the bundle file and manifest (bundle.py), the TFLite interpreter shim
(interpreter.py), a loaded model whose tensors match its manifest (loaded.py). Imports edge.features.
"""
