"""How long the manifest takes to probe the embedded homes, and how its durations compare with
decoding every file (what the probe did before it read the container's headers).

`python -m benchmarks manifest [--root DIR] [--sequences N]` reads the homes already generated
under DIR (default: resources/synthetic, as the workflow or `python -m benchmarks synthesize
--keep --out DIR` writes them), builds each home's manifest (timed), then probes the same files
by decoding: decord's frame count, rate and last frame, and the whole audio track (timed), and
writes benchmarks/results/manifest.json: seconds per home both ways, and the largest
differences of the durations and of the decoded frame counts that follow from them. The machine
may be shared: the load average before and after is recorded beside the times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import machine_note  # noqa: E402
from vicokd.config import check_config  # noqa: E402
from vicokd.data.manifest import build_manifest  # noqa: E402
from vicokd.data.media import frame_count, open_video, read_audio  # noqa: E402
from vicokd.storage import write_json  # noqa: E402

RESULT = REPO / "benchmarks" / "results" / "manifest.json"


def decoding_probe(path: Path, sample_rate: int) -> tuple[float, float]:
    """(video, audio) seconds as the probe measured them by decoding: frames / average rate
    (after decoding the last frame) and the length of the decoded audio track."""
    vr = open_video(path)
    frames, fps = len(vr), float(vr.get_avg_fps())
    vr.get_batch([frames - 1])
    return frames / fps, len(read_audio(path, sample_rate)) / sample_rate


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=str(REPO / "resources" / "synthetic"))
    ap.add_argument("--sequences", type=int, default=None, help="per home (default: all)")
    args = ap.parse_args(argv if argv is not None else [])
    config = check_config(yaml.safe_load((REPO / "config.yaml").read_text()))
    dataset = {**config["dataset"], "root": args.root}
    sample_rate = int(config["audio"]["sample_rate"])
    decode_fps = float(config["decode"]["fps"])
    load_before = os.getloadavg()
    homes = {}
    for env, rel in dataset["annotations"].items():
        annotations = Path(args.root) / rel
        if not annotations.is_file():
            sys.exit(f"bench_manifest: {annotations} not found; generate the homes first "
                     f"(snakemake --cores 2 {annotations} for the default root)")
        if args.sequences:                      # the first N sequences, in a file of their own
            cut = Path(args.root) / f".bench-{env}.json"
            cut.write_text(json.dumps(json.loads(annotations.read_text())[:args.sequences]))
            annotations = cut
        start = time.perf_counter()
        try:
            manifest = build_manifest(env, annotations, dataset, sample_rate)
        finally:
            if args.sequences:
                annotations.unlink()
        headers = time.perf_counter() - start
        start = time.perf_counter()
        video_diff, audio_diff, usable_diff, count_changes, files = [], [], [], 0, 0
        for seq in manifest["sequences"]:
            lengths = []
            for view, video, audio in zip(seq["views"], seq["video_durations"], seq["audio_durations"]):
                old_video, old_audio = decoding_probe(Path(manifest["root"]) / view, sample_rate)
                video_diff.append(video - old_video)
                audio_diff.append(audio - old_audio)
                lengths.append(min(old_video, old_audio))
                files += 1
            usable_diff.append(seq["duration"] - min(lengths))
            count_changes += frame_count(seq["duration"], decode_fps) != frame_count(min(lengths), decode_fps)
        decoding = time.perf_counter() - start
        homes[env] = {
            "sequences": len(manifest["sequences"]), "files": files,
            "seconds_headers": round(headers, 1), "seconds_decoding": round(decoding, 1),
            "ms_per_file_headers": round(headers / files * 1000, 1),
            "ms_per_file_decoding": round(decoding / files * 1000, 1),
            "video_seconds_headers_minus_decoding": _range(video_diff),
            "audio_seconds_headers_minus_decoding": _range(audio_diff),
            "usable_seconds_headers_minus_decoding": _range(usable_diff),
            "sequences_whose_decoded_frame_count_changes": int(count_changes),
        }
        print(env, json.dumps(homes[env]), flush=True)
    result = {
        "benchmark": "manifest",
        "what": "build_manifest (PyAV headers and packets) against probing by decoding (decord "
                "last frame + whole audio track), same files, same process",
        "root": args.root, "homes": homes, **machine_note(load_before),
    }
    write_json(RESULT, result)
    print(json.dumps(result, indent=2))
    return result


def _range(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"min": round(float(v.min()), 4), "max": round(float(v.max()), 4),
            "mean": round(float(v.mean()), 4)}


if __name__ == "__main__":
    main(sys.argv[1:])
