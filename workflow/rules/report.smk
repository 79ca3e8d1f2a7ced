# Tables, figures and the HTML report, from the training runs' metrics and curves.
# Light rules (seconds): localrules, no benchmark. Inputs are the runs each table shows, from
# the experiments: lists in common.smk; the logic is in src/vicokd/report.py, figures.py,
# html_report.py.


localrules:
    table1,
    table2,
    table3,
    table4,
    figure3,
    report,


# Table 1, 3, 4 and Figure 3 use one seed for every run (the paper's Table 1 shows 3-run means).
TABLE_SEED = 0 if 0 in SEEDS else SEEDS[0]
# The paper's published tables (reference data, never our results), read from the repository.
PAPER_REFERENCE = os.path.join(workflow.basedir, "workflow", "reference", "paper_multisensor_home.csv")


def run_files(runs, name="metrics.json"):
    """results/{run id}/{name} for run ids "{env}/{backbone}/{run}"."""
    return [f"results/{r}/{name}" for r in runs]


def table1_run_ids():
    return table1_runs(HOMES, BACKBONES, METHODS, SUPERVISIONS, TABLE_SEED)


def table2_run_ids():
    return table2_runs(HOMES, BACKBONES, SUPERVISIONS, SEEDS)


def table3_run_ids():
    return table3_runs(HOMES, BACKBONES)


def table4_run_ids():
    return table4_runs(HOMES, ABLATIONS, SUPERVISIONS, TABLE_SEED)


def report_run_ids():
    """Every run any table shows, once."""
    return sorted(set(table1_run_ids() + table2_run_ids() + table3_run_ids() + table4_run_ids()))


rule table1:
    input:
        metrics=run_files(table1_run_ids()),
    output:
        csv="results/table1.csv",
        md="results/table1.md",
        frame_csv="results/table1_frame_map.csv",
        frame_md="results/table1_frame_map.md",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    log:
        "logs/report/table1.log",
    script:
        "../../scripts/table1.py"


rule table2:
    input:
        metrics=run_files(table2_run_ids()),
    output:
        csv="results/table2.csv",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    log:
        "logs/report/table2.log",
    script:
        "../../scripts/table2.py"


rule table3:
    input:
        metrics=run_files(table3_run_ids()),
    output:
        csv="results/table3.csv",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    log:
        "logs/report/table3.log",
    script:
        "../../scripts/table3.py"


rule table4:
    input:
        metrics=run_files(table4_run_ids()),
    output:
        csv="results/table4.csv",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    log:
        "logs/report/table4.log",
    script:
        "../../scripts/table4.py"


rule figure3:
    input:
        curves=run_files(figure3_runs(HOMES, SUPERVISIONS, TABLE_SEED), "curve.csv"),
    output:
        png="results/figure3.png",
        frame_png="results/figure3_frame_map.png",
    params:
        experiments=config["experiments"],
        data_format=config["dataset"]["format"],
        seed=TABLE_SEED,
    log:
        "logs/report/figure3.log",
    script:
        "../../scripts/figure3.py"


# The report prints the config that made the results, so it takes those sections (and only
# reruns, in about a second, when one of them changes, as the runs it shows do anyway).
rule report:
    input:
        tables=rules.table1.output + rules.table2.output + rules.table3.output + rules.table4.output,
        figure3=rules.figure3.output.png,
        figure3_frame=rules.figure3.output.frame_png,
        metrics=run_files(report_run_ids()),
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
                      "model", "teacher", "student", "experiments")
            if k in config
        },
    log:
        "logs/report/report.log",
    script:
        "../../scripts/report.py"
