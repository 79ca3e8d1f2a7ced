"""The embedded default data: synthetic multi-view, audio-visual home recordings.

Rule: synthesize (synthesize.py: `generate_home` writes one home, mp4 files, MultiSensor-Home
annotations, true boxes, stats), from the floor plan (layout.py), the actor's plan (plan.py),
the pictures (render.py), the sound (sound.py), the encoder (encode.py) and the measured
statistics (stats.py). See docs/synthetic.md.
"""
