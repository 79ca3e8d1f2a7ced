# Tables, figures and the HTML report, from the training runs' metrics and curves and each home's
# linear probe (results/{env}/probe.json, the yardstick rows of Table 1 and the line in Figure 3).
# Light rules (seconds): localrules, no benchmark. Inputs are the runs each table shows (the
# *_run_ids helpers in common.smk); the logic is in src/vicokd/report/: tables.py (table1 ...
# table4, one entry that the rule name steers), figures.py (figure3), page.py (report).


localrules:
    table1,
    table2,
    table3,
    table4,
    figure3,
    report,


rule table1:
    input:
        metrics=run_files(table1_run_ids()),
        probes=probe_files(),
    output:
        csv="results/table1.csv",
        md="results/table1.md",
        frame_csv="results/table1_frame_map.csv",
        frame_md="results/table1_frame_map.md",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    conda:
        CONDA_ENV,
    log:
        "logs/report/table1.log",
    script:
        "../../scripts/table1.py"


rule table2:
    input:
        metrics=run_files(table2_run_ids()),
    output:
        csv="results/table2.csv",
        md="results/table2.md",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    conda:
        CONDA_ENV,
    log:
        "logs/report/table2.log",
    script:
        "../../scripts/table2.py"


rule table3:
    input:
        metrics=run_files(table3_run_ids()),
    output:
        csv="results/table3.csv",
        md="results/table3.md",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    conda:
        CONDA_ENV,
    log:
        "logs/report/table3.log",
    script:
        "../../scripts/table3.py"


rule table4:
    input:
        metrics=run_files(table4_run_ids()),
    output:
        csv="results/table4.csv",
        md="results/table4.md",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    conda:
        CONDA_ENV,
    log:
        "logs/report/table4.log",
    script:
        "../../scripts/table4.py"


rule figure3:
    input:
        curves=run_files(grid.figure3_runs(HOMES, SUPERVISIONS, TABLE_SEED), grid.RUN_OUTPUTS["curve"]),
        metrics=run_files(grid.figure3_runs(HOMES, SUPERVISIONS, TABLE_SEED)),
        probes=probe_files(),
    output:
        png="results/figure3.png",
        frame_png="results/figure3_frame_map.png",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    conda:
        CONDA_ENV,
    log:
        "logs/report/figure3.log",
    script:
        "../../scripts/figure3.py"


# Figure 4 (src/vicokd/report/figure4.py): per home, the evidence maps of the MultiASL teacher,
# non-distilled student and ViCoKD on one test frame chosen by a written rule, and the share of
# every map inside the person's box on every test view-frame with a person (true boxes on the
# synthetic homes, else masks.h5); figure4 puts the homes together. The maps recompute each
# model's input from the decoded frames (through the frozen encoders when model.encoders is
# frozen), so figure4_home is a job with a benchmark, one per home.


localrules:
    figure4,
    timelines,


rule figure4_home:
    input:
        unpack(figure4_home_inputs),
    output:
        png="results/{env}/figure4.png",
        json="results/{env}/figure4.json",
    params:
        models=list(grid.FIGURE4_MEASURED),
        box_source="true" if IS_SYNTHETIC else "masks",
        device=config["model"]["device"],
    threads: 1
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        "logs/{env}/figure4.log",
    benchmark:
        "benchmarks/results/{env}/figure4.tsv"
    script:
        "../../scripts/figure4_home.py"


rule figure4:
    input:
        pngs=expand("results/{env}/figure4.png", env=HOMES),
        jsons=expand("results/{env}/figure4.json", env=HOMES),
    output:
        png="results/figure4.png",
        json="results/figure4.json",
    conda:
        CONDA_ENV
    log:
        "logs/report/figure4.log",
    script:
        "../../scripts/figure4.py"


rule timelines:
    input:
        predictions=timeline_prediction_files(),
        labels=expand("results/{env}/labels.h5", env=HOMES),
        masks=expand("results/{env}/masks.h5", env=HOMES),
        splits=expand("results/{env}/split.json", env=HOMES),
    output:
        directory("results/timelines"),
    params:
        timelines=config["report"]["timelines"],
        homes=HOMES,
        models=list(grid.FIGURE4_SHOWN),
        fps=config["decode"]["fps"],
    conda:
        CONDA_ENV
    log:
        "logs/report/timelines.log",
    script:
        "../../scripts/timelines.py"


# The report prints the config that made the results, so it takes those sections (and only
# reruns, in about a second, when one of them changes, as the runs it shows do anyway).
rule report:
    input:
        tables=rules.table1.output + rules.table2.output + rules.table3.output + rules.table4.output,
        figure3=rules.figure3.output.png,
        figure3_frame=rules.figure3.output.frame_png,
        figure4=rules.figure4.output.png,
        figure4_json=rules.figure4.output.json,
        timelines=rules.timelines.output[0],
        metrics=run_files(report_run_ids()),
        probes=probe_files(),
        reference=PAPER_REFERENCE,
    output:
        "results/report.html",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
        benchmarks="benchmarks/results",
        config_sections={
            k: config[k]
            for k in ("dataset", "synthetic", "decode", "audio", "masks", "detector", "split",
                      "model", "teacher", "student", "report", "experiments")
            if k in config
        },
    conda:
        CONDA_ENV,
    log:
        "logs/report/report.log",
    script:
        "../../scripts/report.py"
