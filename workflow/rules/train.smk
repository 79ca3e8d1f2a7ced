# Training: the audio-visual teacher per home and backbone, the students, the teacher with
# view consistency, and the linear probe on the same inputs (the yardstick of Table 1).
# Each run writes grid.RUN_OUTPUTS into results/{env}/{backbone}/{run}/
# (run_outputs in common.smk). Checkpoints live in results/checkpoints/{env}/{backbone}/{run}/last.pt,
# not a declared output, so that a killed job run again resumes instead of starting over.


# model.encoders: frozen -> the frozen, label-free encoders of a home run once over every decoded
# frame; the models then train on features.h5 (docs/model.md). Its params are only the model:
# keys the encoders read, so changing T, the temporal model or a backbone never reruns it.
rule features:
    input:
        unpack(features_inputs),
    output:
        features=home_path("features"),
        encoders=directory(home_path("encoders")),
    params:
        model={k: v for k, v in params_of("model").items() if k in grid.ENCODER_KEYS},
    threads: 2
    priority: DATA_PRIORITY
    conda:
        CONDA_ENV
    log:
        home_log("features"),
    benchmark:
        home_benchmark("features")
    script:
        "../../scripts/features.py"


rule teacher:
    input:
        unpack(teacher_inputs),
    output:
        **run_outputs(grid.TEACHER),
    params:
        model=params_of("model"),
        teacher=params_of("teacher", drop=("vc_weight",)),
    threads: config["teacher"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        run_log(grid.TEACHER),
    benchmark:
        run_benchmark(grid.TEACHER)
    script:
        "../../scripts/teacher.py"


# Students: one visual-only student per home, backbone, method, supervision and seed. Only the
# distilling methods read the teacher and audio.h5 (see student_inputs), so the non-distilled
# student also runs on data without audio (dataset.require_audio: false). Params hold only the
# keys a run reads (student_params): changing a speed option (threads, workers, cache...)
# reruns no training job; the jobs read those from the config (vicokd.runner.job_sections).
rule student:
    input:
        unpack(student_inputs),
    output:
        **run_outputs(STUDENT_RUN),
    params:
        model=params_of("model"),
        student=student_params,
        method=lambda wildcards: wildcards.method,
        supervision=lambda wildcards: wildcards.supervision,
        seed=lambda wildcards: int(wildcards.seed),
    threads: config["student"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        run_log(STUDENT_RUN),
    benchmark:
        run_benchmark(STUDENT_RUN)
    script:
        "../../scripts/student.py"


# The teacher trained with view consistency added (paper Table 3).
rule teacher_vc:
    input:
        unpack(teacher_vc_inputs),
    output:
        **run_outputs(grid.TEACHER_VC),
    params:
        model=params_of("model"),
        teacher=params_of("teacher"),
    threads: config["teacher"]["threads"]
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        run_log(grid.TEACHER_VC),
    benchmark:
        run_benchmark(grid.TEACHER_VC)
    script:
        "../../scripts/teacher_vc.py"


# What a ridge linear probe reads from the same artifacts (picture, sound, both): the reference
# rows of Table 1 and the level drawn in Figure 3. Its settings are fixed (vicokd.runs.probe:
# 32 px grey frames, lambda = 100) and recorded in probe.json; it has no config section.
rule probe:
    input:
        unpack(probe_inputs),
    output:
        grid.probe_file("{env}"),
    threads: 1
    conda:
        CONDA_ENV
    log:
        home_log("probe"),
    benchmark:
        home_benchmark("probe")
    script:
        "../../scripts/probe.py"
