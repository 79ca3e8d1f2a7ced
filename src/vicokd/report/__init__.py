"""The paper's tables and figure from the training runs' metrics and curves, and the HTML page
that shows them beside the paper's published figures.

Rules: table1 ... table4 (tables.py, which also holds the labels, notes and writers the others
use), figure3 (figures.py), report (page.py); claims.py holds the paper's reference figures and
checks its claims.
"""
