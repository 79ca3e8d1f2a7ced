"""How much ViCoKD's view-consistency (VC) term acts on a student of the embedded default:
its value beside the other terms, and its gradient on the student's first layer beside FD's.

Usage (from the repo root, after the teachers of Table 1 exist):
    python -m benchmarks vc [--home home1] [--backbone multiasl] [--supervision frame] [--batches 8]
Reads results/{home}/ (features.h5 or frames.h5, labels.h5, masks.h5, split.json) and the
teacher's model.pt; measures, over the first batches of the train split, a fresh student (as at
the start of training) and the trained ViCoKD student when its model.pt exists. Writes
benchmarks/results/vc-{home}-{backbone}.json and prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO))  # run as a script too: benchmarks/ is a package

from benchmarks import write_result  # noqa: E402


def measure(student, teacher, loader, method, scfg, supervision: str, batches: int) -> dict:
    import torch

    from vicokd.distill import visible_batch, distillation_terms
    from vicokd.losses import supervised_loss

    first = next(p for p in student.parameters() if p.requires_grad)   # the encoder side
    sums: dict[str, float] = {}
    grads: dict[str, float] = {}
    pairs = covisible = conf = 0.0
    n = 0
    for b, batch in enumerate(loader):
        if b >= batches:
            break
        with torch.no_grad():
            t_out = teacher(batch["frames"], batch["fbank"])
        seen = visible_batch(batch, supervision)
        out = student(seen["frames"])
        sup, _ = supervised_loss(out, seen, scfg.lambda_seq, supervision)
        terms = {"supervised": sup, **distillation_terms(method, out, t_out, seen["masks"],
                                                         scfg.tau)}
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value.detach())
            g = torch.autograd.grad(value, first, retain_graph=True, allow_unused=True)[0]
            grads[name] = grads.get(name, 0.0) + (float(g.norm()) if g is not None else 0.0)
        m = seen["masks"]
        i, j = torch.triu_indices(m.shape[1], m.shape[1], offset=1)
        pairs += float(torch.ones_like(m[:, i]).sum())
        covisible += float((m[:, i] * m[:, j]).sum())
        probs = torch.softmax(out["view_frame_logits"].detach(), -1)
        conf += float(probs.amax(-1).mean())
        n += 1
    total = sum(sums.values())
    return {"terms": {k: round(v / n, 6) for k, v in sums.items()},
            "vc_share_of_total": round(sums["vc"] / total, 6) if total else None,
            "grad_norm": {k: round(v / n, 6) for k, v in grads.items()},
            "vc_grad_over_fd_grad": round(grads["vc"] / grads["fd"], 6) if grads.get("fd") else None,
            "covisible_pair_share": round(covisible / pairs, 4) if pairs else None,
            "mean_max_view_prob": round(conf / n, 4), "batches": n}


def main(argv=()) -> None:
    import torch
    import yaml

    from vicokd.data.dataset import DataFiles, SequenceDataset, model_input_sizes
    from vicokd.config import fill
    from vicokd.distill import LossConfig
    from vicokd.experiments import get_method
    from vicokd.model_configs import model_config
    from vicokd.models import build_model, load_model
    from vicokd.runs.student import load_teacher
    from vicokd.train import make_loader

    parser = argparse.ArgumentParser(prog="python -m benchmarks vc", description=__doc__)
    parser.add_argument("--home", default="home1")
    parser.add_argument("--backbone", default="multiasl")
    parser.add_argument("--supervision", default="frame", choices=["frame", "sequence"])
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args(list(argv))
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    res = REPO / "results" / args.home
    frozen = config["model"].get("encoders") == "frozen"
    source = str(res / ("features.h5" if frozen else "frames.h5"))
    files = DataFiles(frames=source, audio=source if frozen else str(res / "audio.h5"),
                      labels=str(res / "labels.h5"), masks=str(res / "masks.h5"),
                      split=str(res / "split.json"))
    norm = config["model"].get("normalize") or {}
    ds = SequenceDataset(files, "train", frames=config["model"]["frames"],
                         image_size=config["model"]["image_size"], train=True,
                         image_mean=norm.get("image_mean", 0.5), image_std=norm.get("image_std", 0.5))
    teacher = load_teacher(res / args.backbone / "teacher" / "model.pt", args.backbone, ds.classes,
                           torch.device("cpu"))
    sizes = model_input_sizes(ds, config["model"], audio=False)
    sizes.update(mel_bins=teacher.cfg.mel_bins, audio_length=teacher.cfg.audio_length)
    method = get_method("vicokd")
    scfg = LossConfig.of_student(fill("student", config["student"]))
    torch.manual_seed(0)
    fresh = build_model(model_config(config["model"], args.backbone, ds.num_classes, audio=False,
                                     **sizes)).eval()
    loader = make_loader(ds, int(config["student"]["batch_size"]), shuffle=True)
    result = {"home": args.home, "backbone": args.backbone, "supervision": args.supervision,
              "fresh_student": measure(fresh, teacher, loader, method, scfg, args.supervision,
                                       args.batches)}
    trained = res / args.backbone / f"vicokd-{args.supervision}-seed0" / "model.pt"
    if trained.is_file():
        result["trained_student"] = measure(load_model(trained).eval(), teacher, loader, method,
                                            scfg, args.supervision, args.batches)
    write_result(REPO / "benchmarks" / "results" / f"vc-{args.home}-{args.backbone}.json", result)


if __name__ == "__main__":
    main(sys.argv[1:])
