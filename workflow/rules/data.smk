# Data stages: the synthetic homes (embedded default), manifest, decode, spectrogram, labels, split.
# They all run before any training job (priority: DATA_PRIORITY): the detector, on the critical
# path, needs every home's frames and split, and ready training jobs would otherwise go first.


if IS_SYNTHETIC:

    rule synthesize:
        output:
            annotations=os.path.join(DATA_ROOT, "{env}", "annotations.json"),
            boxes=os.path.join(DATA_ROOT, "{env}", "boxes.h5"),
            stats=os.path.join(DATA_ROOT, "{env}", "synthetic_stats.json"),
            videos=directory(os.path.join(DATA_ROOT, "{env}", "videos")),
        params:
            synthetic=lambda wildcards: synthetic_settings(wildcards.env),
            classes=config["dataset"]["classes"],
        threads: config["synthetic"]["workers"]
        priority: DATA_PRIORITY
        conda:
            CONDA_ENV,
        log:
            "logs/{env}/synthesize.log",
        benchmark:
            "benchmarks/results/{env}/synthesize.tsv"
        script:
            "../../scripts/synthesize.py"


localrules:
    manifest,
    split,


rule manifest:
    input:
        unpack(manifest_inputs),
    output:
        "results/{env}/manifest.json",
    params:
        dataset=config["dataset"],
        recordings=recording_stamps,
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        "logs/{env}/manifest.log",
    script:
        "../../scripts/manifest.py"


rule decode:
    input:
        manifest="results/{env}/manifest.json",
    output:
        "results/{env}/frames.h5",
    params:
        decode=config["decode"],
    threads: 1
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        "logs/{env}/decode.log",
    benchmark:
        "benchmarks/results/{env}/decode.tsv"
    script:
        "../../scripts/decode.py"


rule spectrogram:
    input:
        manifest="results/{env}/manifest.json",
    output:
        "results/{env}/audio.h5",
    params:
        audio=config["audio"],
        decode=config["decode"],
    threads: 1
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        "logs/{env}/spectrogram.log",
    benchmark:
        "benchmarks/results/{env}/spectrogram.tsv"
    script:
        "../../scripts/spectrogram.py"


rule labels:
    input:
        manifest="results/{env}/manifest.json",
    output:
        "results/{env}/labels.h5",
    params:
        decode=config["decode"],
        labels=config["labels"],
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        "logs/{env}/labels.log",
    script:
        "../../scripts/labels.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        "results/{env}/split.json",
    params:
        split=config["split"],
        view_pattern=config["dataset"]["view_pattern"],
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        "logs/{env}/split.log",
    script:
        "../../scripts/split.py"
