"""Sound: the WAV/FLAC reader (audiofile.py), the microphone (microphone.py), the classifier of clips and live
windows (listen.py), window records (records.py), alert recordings (alert_recording.py). Imports features,
model, decisions, records; never edge.image or edge.delivery.
"""
