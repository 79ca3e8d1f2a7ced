"""The embedded default data: synthetic multi-view, audio-visual home recordings.

`generate_home` writes one home (mp4 files, MultiSensor-Home annotations, true boxes, stats);
`main` is the entry of the `synthesize` rule. See docs/synthetic.md.
"""

from .generate import SyntheticConfig, generate_home, main  # noqa: F401
