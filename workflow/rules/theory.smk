# The theory toys' figures (config `theory:`): random-features phase space, p-spin schedules,
# DFA toys (align then memorise, degeneracy breaking), ConViT / T-CNN on digits (with
# convit.md, which results/README.md includes).
rule theory:
    output:
        [str(RESULTS / "theory" / name) for name in THEORY_FIGURES],
    log:
        str(RESULTS / "logs" / "theory.log"),
    conda:
        "../envs/synthmath.yaml"
    params:
        settings=lambda wildcards: PLAN.theory,
    script:
        "../scripts/theory.py"
