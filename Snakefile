# synthmath: generate data, train transformers, evaluate in and out of distribution, report.
# Run: snakemake --cores all   (config: config.yaml; another: --configfile configs/paper/linalg.yaml)
from snakemake.utils import min_version

min_version("9.0")


# config.yaml unless --configfile names another (which then replaces it instead of merging)
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/cas.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/theory.smk"


# Every study's table and figure, the CAS baseline and the theory figures if configured, and
# the summary beside the papers' figures.
rule all:
    default_target: True
    input:
        all_outputs(),
