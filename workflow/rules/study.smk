# The view-consistency study, run on demand (never part of Table 1 or the report):
#   snakemake --configfile config/study.yaml --cores 2 results/study/view_consistency.csv
# Its homes (study.covisibility, study.disparity) are synthetic homes with their own physical
# settings (synthetic.homes); their data, masks, teacher and students come from the same rules
# as the default homes' (the homes are further {env} values), and their masks from the detector
# trained on the default homes. Per home, study_views measures its views (views.json); then
# view_consistency puts the students' test mAP against those statistics.

STUDY = config["study"]
STUDY_HOMES = list(dict.fromkeys(STUDY["covisibility"] + STUDY["disparity"]))

if IS_SYNTHETIC and STUDY_HOMES:

    localrules:
        view_consistency,

    rule study_views:
        input:
            frames=home_path("frames"),
            labels=home_path("labels"),
            split=home_path("split"),
            masks=home_path("masks"),
            quality=home_path("masks_quality"),
            boxes=lambda wildcards: true_boxes_path(wildcards.env),
            stats=os.path.join(DATA_ROOT, "{env}", "synthetic_stats.json"),
        output:
            grid.study_views_file("{env}"),
        params:
            synthetic=lambda wildcards: synthetic_settings(wildcards.env),
            decode=params_of("decode"),
        threads: 1
        conda:
            CONDA_ENV
        log:
            f"logs/{grid.STUDY_DIR}/{{env}}/study_views.log",
        benchmark:
            f"benchmarks/results/{grid.STUDY_DIR}/{{env}}/study_views.tsv"
        script:
            "../../scripts/study_views.py"

    rule view_consistency:
        input:
            views=[grid.study_views_file(env) for env in STUDY_HOMES],
            metrics=run_files(grid.study_runs(STUDY_HOMES, SUPERVISIONS, STUDY["seeds"])),
            teachers=run_files([grid.run_id(env, grid.ABLATION_BACKBONE, grid.TEACHER)
                                for env in STUDY_HOMES]),
        output:
            csv="results/study/view_consistency.csv",
            md="results/study/view_consistency.md",
            png="results/study/view_consistency.png",
        params:
            study=STUDY,
            supervisions=SUPERVISIONS,
        conda:
            CONDA_ENV
        log:
            "logs/study/view_consistency.log",
        script:
            "../../scripts/view_consistency.py"
