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
            home_log("synthesize"),
        benchmark:
            home_benchmark("synthesize")
        script:
            "../../scripts/synthesize.py"


localrules:
    manifest,
    split,


rule manifest:
    input:
        unpack(manifest_inputs),
    output:
        home_path("manifest"),
    params:
        dataset=params_of("dataset"),
        files=manifest_files,
        recordings=recording_stamps,
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        home_log("manifest"),
    script:
        "../../scripts/manifest.py"


rule decode:
    input:
        manifest=home_path("manifest"),
    output:
        home_path("frames"),
    params:
        decode=params_of("decode"),
    threads: 1
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        home_log("decode"),
    benchmark:
        home_benchmark("decode")
    script:
        "../../scripts/decode.py"


rule spectrogram:
    input:
        manifest=home_path("manifest"),
    output:
        home_path("audio"),
    params:
        audio=params_of("audio"),
        decode=params_of("decode"),
    threads: 1
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        home_log("spectrogram"),
    benchmark:
        home_benchmark("spectrogram")
    script:
        "../../scripts/spectrogram.py"


rule labels:
    input:
        manifest=home_path("manifest"),
    output:
        home_path("labels"),
    params:
        decode=params_of("decode"),
        labels=params_of("labels"),
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        home_log("labels"),
    script:
        "../../scripts/labels.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        home_path("split"),
    params:
        split=params_of("split"),
        files=split_files,
        # a dict, not a plain string: Snakemake would read a {n} quantifier as a wildcard
        dataset={"view_pattern": config["dataset"]["view_pattern"]},
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV,
    log:
        home_log("split"),
    script:
        "../../scripts/split.py"
