"""The view-consistency study, run on demand (results/study/, docs/distillation.md): when does
ViCoKD's view-consistency term help? ViCoKD against CoKD (ViCoKD without it) and the
non-distilled student, 3 seeds, both supervisions, MultiASL, on synthetic homes whose
co-visibility and view disparity are set by physical settings of the generator
(`synthetic.homes`, config/study.yaml) and described by measured statistics only.

Rules: study_views (views.py: each study home's views, measured: visibility, co-visibility, a
per-view linear probe and how much the views' readouts disagree) and view_consistency
(view_consistency.py: the runs' metrics against those statistics, as a CSV, a table and a
figure).
"""
