"""The data stages, from annotations and recordings to the HDF5 artifacts training reads.

Rules: manifest (manifest.py), decode (decode.py), spectrogram (spectrogram.py), labels
(labels.py), split (split.py); annotations.py and media.py read the annotation formats and
the recordings for them, dataset.py serves the artifacts to training.
"""
