"""The `vicokd` command: deploy a trained visual-only student on new recordings.

    vicokd predict results/home1/multiasl/vicokd-sequence-seed0/model.pt cam1.mp4 cam2.mp4 ...

The views of one sequence are decoded at the rate and size the model was trained on
(`--fps`, `--size`; defaults 2.5 and 96, the embedded default), T frames are taken at the
evaluation positions, and the student's sequence and frame scores are printed as JSON (or
written with `--out`). No audio is read: the student never needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import VicokdError


def predict(model_path: str | Path, videos: list[str | Path], fps: float = 2.5, size: int = 96,
            threshold: float = 0.5, encoders: str | Path | None = None) -> dict:
    """Scores of one multi-view sequence (one mp4 per view) from a student model.pt.

    A model trained on frozen features (model.encoders: frozen) needs its home's encoders
    folder (`encoders`; default: results/{env}/encoders beside the run's folder)."""
    import numpy as np
    import torch

    from .data.dataset import normalise_frames, resize_frames, sample_indices
    from .data.decode import decode_sequence
    from .data.media import frame_count, probe
    from .models import load_model_file

    model, blob = load_model_file(model_path)
    if model.cfg.audio:
        raise VicokdError(f"{model_path}: an audio-visual teacher; `vicokd predict` deploys "
                          f"visual-only students (a student run's model.pt)")
    classes = list(blob.get("classes") or [f"class{k}" for k in range(model.cfg.num_classes)])
    model_section = (blob.get("run_config") or {}).get("model", {})
    norm = model_section.get("normalize") or {}
    t, image_size = model.cfg.frames, model.cfg.image_size

    infos = [probe(v, 16000, need_audio=False) for v in videos]
    duration = min(i.video_duration for i in infos)
    seq = {"views": [str(v) for v in videos], "fps": [i.fps for i in infos],
           "frames": [i.frames for i in infos], "duration": duration}
    frames = decode_sequence(Path("."), seq, fps, size)                 # [V, L, H, W, 3]
    idx = sample_indices(frames.shape[1], t, train=False)
    mean, std = float(norm.get("image_mean", 0.5)), float(norm.get("image_std", 0.5))
    if model.cfg.encoders == "frozen":
        from .encoders import FrozenEncoders

        folder = Path(encoders) if encoders else Path(model_path).resolve().parents[2] / "encoders"
        frozen = FrozenEncoders.load(folder)
        # features of every decoded frame (each frame's change to the next one is a feature)
        x = frozen.video(normalise_frames(resize_frames(frames, frozen.cfg.image_size), mean,
                                          std))[:, idx]
    else:
        x = normalise_frames(resize_frames(frames[:, idx], image_size), mean, std)
    model.eval()
    with torch.no_grad():
        out = model(x[None])
    seq_scores = torch.sigmoid(out["sequence_logits"][0]).numpy()
    frame_scores = torch.sigmoid(out["frame_logits"][0]).numpy()
    return {
        "model": str(model_path),
        "videos": [str(v) for v in videos],
        "duration": duration,
        "decoded_frames": int(frame_count(duration, fps)),
        "classes": classes,
        "sequence_scores": {c: round(float(s), 6) for c, s in zip(classes, seq_scores)},
        "predicted": [c for c, s in zip(classes, seq_scores) if s >= threshold],
        "frame_times": [round(float(i) / fps, 3) for i in idx],
        "frame_scores": np.round(frame_scores, 6).tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vicokd", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="score one multi-view sequence with a trained student")
    p.add_argument("model", help="a student run's model.pt")
    p.add_argument("videos", nargs="+", help="one mp4 per view of the sequence, in view order")
    p.add_argument("--fps", type=float, default=2.5, help="decode rate the model was trained at")
    p.add_argument("--size", type=int, default=96, help="decoded frame size (config decode.size)")
    p.add_argument("--threshold", type=float, default=0.5, help="score above which a class is listed")
    p.add_argument("--out", help="write the JSON here instead of printing it")
    p.add_argument("--encoders", help="the home's frozen encoders folder (model.encoders: frozen; "
                                      "default: results/{env}/encoders of the model's run)")
    args = parser.parse_args(argv)
    try:
        result = predict(args.model, args.videos, args.fps, args.size, args.threshold,
                         args.encoders)
    except VicokdError as exc:
        print(f"vicokd: error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        from .storage import write_json

        write_json(args.out, result)
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
