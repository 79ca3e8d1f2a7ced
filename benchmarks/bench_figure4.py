"""What Figure 4's measurement costs: evidence maps per decoded frame (all views at once) for
each model of one home, and the figure4_home job that this extrapolates to.

Usage (from the repo root, after the runs Figure 4 reads exist, e.g. `snakemake results/figure4.png`):
    python -m benchmarks figure4 [--home home1] [--sequences 4] [--threads 1]
Reads results/{home}/ (frames.h5, features.h5 and encoders/ or audio.h5, split.json) and the
MultiASL runs of experiments.FIGURE4_MEASURED; maps every decoded frame of the first test
sequences; counts the test frames where a person is seen (the true boxes of a synthetic home,
else masks.h5) to extrapolate. Writes benchmarks/results/figure4-{home}.json and prints it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", default="home1")
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default=str(REPO / "results"))
    args = ap.parse_args(argv)

    import torch

    from vicokd.experiments import figure4_runs
    from vicokd.report.figure4 import PersonBoxes
    from vicokd.saliency import HomeInputs, ModelEvidence
    from vicokd.storage import read_json

    torch.set_num_threads(args.threads)
    res = Path(args.results)
    home = res / args.home
    if not (home / "split.json").is_file():
        sys.exit(f"bench figure4: {home}/split.json not found (run the workflow first)")
    frozen = (home / "features.h5").is_file()
    inputs = HomeInputs(frames=str(home / "frames.h5"),
                        features=str(home / "features.h5") if frozen else None,
                        encoders=str(home / "encoders") if frozen else None,
                        audio=None if frozen else str(home / "audio.h5"))
    ids = [str(s) for s in read_json(home / "split.json")["test"]]
    true_boxes = res.parent / "resources" / "synthetic" / args.home / "boxes.h5"
    result = {"home": args.home, "threads": args.threads, "frozen_encoders": frozen, "models": {}}
    lengths = None
    for name, rid in figure4_runs(args.home, ["frame"], 0).items():
        t0 = time.perf_counter()
        ev = ModelEvidence.load(res / rid / "model.pt", inputs)
        load = time.perf_counter() - t0
        lengths = {s: int(ev.frames_h5[s]["frames"].shape[1]) for s in ids}
        views = int(ev.frames_h5[ids[0]]["frames"].shape[0])
        frames = seconds = 0.0
        for sid in ids[:args.sequences]:
            t0 = time.perf_counter()
            ev.sequence(sid, range(lengths[sid]))
            seconds += time.perf_counter() - t0
            frames += lengths[sid]
        ev.close()
        result["models"][name] = {"load_s": round(load, 3), "frames": int(frames),
                                  "ms_per_frame": round(1000 * seconds / frames, 2)}
    import h5py
    with h5py.File(inputs.frames) as f:
        size, fps = int(f.attrs["size"]), float(f.attrs["fps"])
    boxes = PersonBoxes(true_boxes if true_boxes.is_file() else home / "masks.h5",
                        "true" if true_boxes.is_file() else "masks", size, fps)
    seen = sum(int(boxes.of(s, views, lengths[s])[1].any(0).sum()) for s in ids)
    boxes.close()
    per_frame = sum(m["ms_per_frame"] for m in result["models"].values()) / 1000
    result.update(test_sequences=len(ids), test_frames=sum(lengths.values()),
                  frames_with_a_person=seen,
                  estimated_maps_s=round(per_frame * seen, 1),
                  note="estimated_maps_s: the maps of every model on every test frame with a "
                       "person, at the measured cost per frame; the job adds its start-up "
                       "(imports, loading) and drawing")
    write_result(REPO / "benchmarks" / "results" / f"figure4-{args.home}.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
