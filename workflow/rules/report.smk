# A study's table (CSV, Markdown) and figure (PNG), logged to MLflow as artifacts.
rule report:
    input:
        get_study_evals,
    output:
        csv=report(
            str(RESULTS / "{study}" / "table.csv"),
            category="{study}",
            caption="../report/table.rst",
        ),
        md=str(RESULTS / "{study}" / "table.md"),
        png=report(
            str(RESULTS / "{study}" / "figure.png"),
            category="{study}",
            caption="../report/figure.rst",
        ),
    log:
        str(RESULTS / "logs" / "report" / "{study}.log"),
    conda:
        "../envs/synthmath.yaml"
    params:
        spec=get_report_params,
    script:
        "../scripts/report.py"


# A further report of a study (config `report:` as a list): table-<name>.* and figure-<name>.png.
rule report_named:
    input:
        get_study_evals,
    output:
        csv=str(RESULTS / "{study}" / "table-{name}.csv"),
        md=str(RESULTS / "{study}" / "table-{name}.md"),
        png=str(RESULTS / "{study}" / "figure-{name}.png"),
    log:
        str(RESULTS / "logs" / "report" / "{study}-{name}.log"),
    conda:
        "../envs/synthmath.yaml"
    params:
        spec=get_report_params,
    script:
        "../scripts/report.py"


# results/README.md: every study's table (and the CAS baseline) beside what the paper reports.
rule summary:
    input:
        unpack(get_summary_inputs),
    output:
        str(RESULTS / "README.md"),
    log:
        str(RESULTS / "logs" / "summary.log"),
    conda:
        "../envs/synthmath.yaml"
    params:
        studies=get_summary_params,
    script:
        "../scripts/summary.py"
