"""Front ends shared with the converter (train/serve parity): how a picture (pixels.py) or a sound
(logmel.py) becomes the model's input tensor. numpy and Pillow only; imports nothing else of edge/.
"""
