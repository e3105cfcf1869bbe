"""NatureVision base station: receives detections over MQTT, stores them, lists and exports them."""
