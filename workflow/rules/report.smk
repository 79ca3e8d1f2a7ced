# Tables, figures and the HTML report, from the training runs' metrics and curves and each home's
# linear probe (results/{env}/probe.json, the yardstick rows of Table 1 and the line in Figure 3).
# Light rules (seconds): localrules, no benchmark. Inputs are the runs each table shows (the
# *_run_ids helpers in common.smk); the logic is in src/vicokd/report/: a module per rule
# (table1.py ... table4.py, figures.py for figure3, page.py for report), the long tables in
# tables.py. The report reads the tables and figures these rules wrote. `report()` gives each
# table and figure a caption for `snakemake --report report.zip` (workflow/report/).


localrules:
    table1,
    table2,
    table3,
    table4,
    figure3,
    loss_terms,
    report,


rule table1:
    input:
        metrics=run_files(table1_run_ids()),
        probes=probe_files(),
    output:
        csv=captioned(results_file("table1.csv"), "table1", "Tables"),
        md=results_file("table1.md"),
        frame_csv=captioned(results_file("table1_frame_map.csv"), "table1_frame", "Tables"),
        frame_md=results_file("table1_frame_map.md"),
        best_epoch_csv=results_file("table1_best_epoch_map.csv"),
    params:
        **table_params(),
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
        csv=captioned(results_file("table2.csv"), "table2", "Tables"),
        md=results_file("table2.md"),
    params:
        **table_params(),
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
        csv=captioned(results_file("table3.csv"), "table3", "Tables"),
        md=results_file("table3.md"),
    params:
        **table_params(),
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
        csv=captioned(results_file("table4.csv"), "table4", "Tables"),
        md=results_file("table4.md"),
    params:
        **table_params(),
    conda:
        CONDA_ENV,
    log:
        "logs/report/table4.log",
    script:
        "../../scripts/table4.py"


rule figure3:
    input:
        curves=run_files(figure3_run_ids(), grid.RUN_OUTPUTS["curve"]),
        metrics=run_files(figure3_run_ids()),
        probes=probe_files(),
    output:
        png=captioned(results_file("figure3.png"), "figure3", "Figures"),
        frame_png=captioned(results_file("figure3_frame_map.png"), "figure3_frame", "Figures"),
    params:
        **table_params(),
    conda:
        CONDA_ENV,
    log:
        "logs/report/figure3.log",
    script:
        "../../scripts/figure3.py"


# How hard each loss term pulls (curve.csv's per-term columns), MultiASL students at the table seed.
rule loss_terms:
    input:
        curves=run_files(loss_terms_run_ids(), grid.RUN_OUTPUTS["curve"]),
    output:
        csv=captioned(results_file("loss_terms.csv"), "loss_terms", "Tables"),
        png=captioned(results_file("loss_terms.png"), "loss_terms", "Figures"),
    params:
        **table_params(),
    conda:
        CONDA_ENV,
    log:
        "logs/report/loss_terms.log",
    script:
        "../../scripts/loss_terms.py"


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
        png=captioned(home_path("figure4"), "figure4", "Figures"),
        json=home_path("figure4_json"),
    params:
        models=list(grid.FIGURE4_MEASURED),
        box_source="true" if IS_SYNTHETIC else "masks",
    threads: 1
    resources:
        gpu=training_gpus(),
    conda:
        CONDA_ENV
    log:
        home_log("figure4"),
    benchmark:
        home_benchmark("figure4")
    script:
        "../../scripts/figure4_home.py"


rule figure4:
    input:
        pngs=[home_path("figure4", env) for env in HOMES],
        jsons=[home_path("figure4_json", env) for env in HOMES],
    output:
        png=captioned(results_file("figure4.png"), "figure4", "Figures"),
        json=results_file("figure4.json"),
    conda:
        CONDA_ENV
    log:
        "logs/report/figure4.log",
    script:
        "../../scripts/figure4.py"


rule timelines:
    input:
        predictions=timeline_prediction_files(),
        labels=[home_path("labels", env) for env in HOMES],
        masks=[home_path("masks", env) for env in HOMES],
        splits=[home_path("split", env) for env in HOMES],
    output:
        directory(results_file("timelines")),
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


# The report prints the config that made the results: the sections' keys that change results
# (params_of; a speed option reruns nothing, not even this page).
rule report:
    input:
        table1=rules.table1.output.csv,
        table1_frame=rules.table1.output.frame_csv,
        table1_best_epoch=rules.table1.output.best_epoch_csv,
        table2=rules.table2.output.csv,
        table3=rules.table3.output.csv,
        table4=rules.table4.output.csv,
        figure3=rules.figure3.output.png,
        figure3_frame=rules.figure3.output.frame_png,
        loss_terms=rules.loss_terms.output.csv,
        loss_terms_png=rules.loss_terms.output.png,
        figure4=rules.figure4.output.png,
        figure4_json=rules.figure4.output.json,
        timelines=rules.timelines.output[0],
        reference=PAPER_REFERENCE,
        # with study homes (--configfile config/study.yaml) the report shows the study too
        **({"study_csv": "results/study/view_consistency.csv",
            "study_png": "results/study/view_consistency.png"}
           if IS_SYNTHETIC and (config["study"]["covisibility"] or config["study"]["disparity"])
           else {}),
    output:
        results_file("report.html"),
    params:
        **table_params(),
        benchmarks="benchmarks/results",
        config_sections={
            k: params_of(k)
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
