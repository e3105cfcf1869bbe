"""NatureVision converter (workstation side): datasets, training, int8 quantization, verification.

Imports the edge's preprocessing and bundle code so that training and serving cannot drift apart.
"""

from edge import __version__  # the converter ships with the runtime it targets

__all__ = ["__version__"]
