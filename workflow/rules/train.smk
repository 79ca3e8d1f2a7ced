# Training: the audio-visual teacher per home and backbone (students come in their own rules).
# Checkpoints live in results/checkpoints/{env}/{backbone}/{run}/last.pt, not a declared output,
# so that a killed job run again resumes instead of starting over.


rule teacher:
    input:
        frames="results/{env}/frames.h5",
        audio="results/{env}/audio.h5",
        labels="results/{env}/labels.h5",
        masks="results/{env}/masks.h5",
        split="results/{env}/split.json",
    output:
        model="results/{env}/{backbone}/teacher/model.pt",
        curve="results/{env}/{backbone}/teacher/curve.csv",
        metrics="results/{env}/{backbone}/teacher/metrics.json",
        predictions="results/{env}/{backbone}/teacher/predictions.h5",
    params:
        model=config["model"],
        teacher=config["teacher"],
    threads: config["teacher"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        "logs/{env}/{backbone}/teacher.log",
    benchmark:
        "benchmarks/results/{env}/{backbone}/teacher.tsv"
    script:
        "../../scripts/teacher.py"
