"""NatureVision edge runtime: classifies frames and audio offline on a field unit.

Device-side code only: numpy, pillow and a TFLite interpreter. Never imports TensorFlow
(except `tensorflow.lite` as the interpreter of last resort) and never imports `converter`.
"""

__version__ = "0.2.0"
