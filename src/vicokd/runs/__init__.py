"""The training runs: each writes model.pt, curve.csv, metrics.json and predictions.h5 into
results/{env}/{backbone}/{run}/ (outputs.py).

Rules: teacher (teacher.py), teacher_vc (teacher_vc.py), student (student.py).
"""
