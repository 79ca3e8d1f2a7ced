"""Speed and memory measurements, run on demand (`make bench` or `python -m benchmarks.bench_x`).

Each bench_*.py module has a `main()` that measures, writes its figures to
benchmarks/results/<name>.json and prints them. They are not tests: a slow machine makes a
figure worse, never a test red.
"""
