"""Human-detection masks: which views see a person at each decoded frame.

Rules: detector (detector.py, the bootstrap YOLOv10 on the synthetic homes), masks (masks.py),
masks_quality (quality.py). yolo.py sets up ultralytics offline and loads weights for both;
truth.py reads the synthetic homes' true boxes for the detector's training set and the quality.
"""
