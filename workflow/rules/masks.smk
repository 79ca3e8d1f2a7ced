# Human-detection masks: the bootstrap YOLOv10 detector (only when masks.weights is null),
# masks per home from the decoded frames, and their quality on the synthetic homes.

localrules:
    masks_quality,


if IS_SYNTHETIC and not config["masks"]["weights"]:

    rule detector:
        input:
            frames=[home_path("frames", env) for env in HOMES],
            split=[home_path("split", env) for env in HOMES],
            boxes=[true_boxes_path(env) for env in HOMES],
        output:
            weights=DETECTOR_WEIGHTS,
            metrics="results/detector/metrics.json",
        params:
            detector=params_of("detector"),
            decode=params_of("decode"),
            homes=HOMES,
        # One thread: on a CPU, two torch threads trained it no faster (user time = wall
        # time), and the training jobs that do not read the masks use the other cores
        # meanwhile (on SLURM the profile's set-threads decides; with a GPU it sets the
        # loader workers). First in the queue: every run that reads the masks waits for it.
        # (Not a share of workflow.cores: that is undefined on a cluster executor.)
        threads: 1
        priority: DATA_PRIORITY
        resources:
            gpu=1 if config["detector"]["device"] == "cuda" else 0,
        conda:
            CONDA_ENV,
        log:
            "logs/detector.log",
        benchmark:
            "benchmarks/results/detector.tsv"
        script:
            "../../scripts/detector.py"


rule masks:
    input:
        unpack(masks_inputs),
    output:
        masks=home_path("masks"),
    params:
        masks=params_of("masks"),
    # YOLO inference on a CPU kept ~0.9 of one core busy with 2 threads (benchmark mean_load):
    # one thread per home lets both homes run side by side (SLURM: the profile's set-threads).
    threads: 1
    priority: DATA_PRIORITY
    resources:
        gpu=1 if config["masks"]["device"] == "cuda" else 0,
    conda:
        CONDA_ENV,
    log:
        home_log("masks"),
    benchmark:
        home_benchmark("masks")
    script:
        "../../scripts/masks.py"


if IS_SYNTHETIC:

    rule masks_quality:
        input:
            masks=home_path("masks"),
            split=home_path("split"),
            boxes=lambda wildcards: true_boxes_path(wildcards.env),
        output:
            home_path("masks_quality"),
        params:
            decode=params_of("decode"),
        conda:
            CONDA_ENV,
        log:
            home_log("masks_quality"),
        script:
            "../../scripts/masks_quality.py"
