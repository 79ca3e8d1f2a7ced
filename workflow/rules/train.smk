# Training: the audio-visual teacher per home and backbone (students come in their own rules).
# Checkpoints live in results/checkpoints/{env}/{backbone}/{run}/last.pt, not a declared output,
# so that a killed job run again resumes instead of starting over.


rule teacher:
    input:
        unpack(teacher_inputs),
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


# Students: one visual-only student per home, backbone, method, supervision and seed. Only the
# distilling methods read the teacher and audio.h5 (see student_inputs), so the non-distilled
# student also runs on data without audio (dataset.require_audio: false).
rule student:
    input:
        unpack(student_inputs),
    output:
        model="results/{env}/{backbone}/{method}-{supervision}-seed{seed}/model.pt",
        curve="results/{env}/{backbone}/{method}-{supervision}-seed{seed}/curve.csv",
        metrics="results/{env}/{backbone}/{method}-{supervision}-seed{seed}/metrics.json",
        predictions="results/{env}/{backbone}/{method}-{supervision}-seed{seed}/predictions.h5",
    params:
        model=config["model"],
        student=config["student"],
        method=lambda wildcards: wildcards.method,
        supervision=lambda wildcards: wildcards.supervision,
        seed=lambda wildcards: int(wildcards.seed),
    threads: config["student"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        "logs/{env}/{backbone}/{method}-{supervision}-seed{seed}.log",
    benchmark:
        "benchmarks/results/{env}/{backbone}/{method}-{supervision}-seed{seed}.tsv"
    script:
        "../../scripts/student.py"


# The teacher trained with view consistency added (paper Table 3).
rule teacher_vc:
    input:
        frames="results/{env}/frames.h5",
        audio="results/{env}/audio.h5",
        labels="results/{env}/labels.h5",
        masks="results/{env}/masks.h5",
        split="results/{env}/split.json",
    output:
        model="results/{env}/{backbone}/teacher-vc/model.pt",
        curve="results/{env}/{backbone}/teacher-vc/curve.csv",
        metrics="results/{env}/{backbone}/teacher-vc/metrics.json",
        predictions="results/{env}/{backbone}/teacher-vc/predictions.h5",
    params:
        model=config["model"],
        teacher=config["teacher"],
    threads: config["teacher"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        "logs/{env}/{backbone}/teacher-vc.log",
    benchmark:
        "benchmarks/results/{env}/{backbone}/teacher-vc.tsv"
    script:
        "../../scripts/teacher_vc.py"
