# The CAS baseline (config `cas:`): SymPy on a symbolic study's test sets at several timeouts.
rule cas:
    input:
        unpack(get_cas_inputs),
    output:
        str(RESULTS / "cas" / "{study}.json"),
    log:
        str(RESULTS / "logs" / "cas" / "{study}.log"),
    benchmark:
        str(RESULTS / "benchmarks" / "cas" / "{study}.tsv")
    conda:
        "../envs/synthmath.yaml"
    threads: get_cas_threads
    params:
        spec=get_cas_params,
    script:
        "../scripts/cas.py"


# Tables 3 and 8: the CAS result beside the paper's rows and the model's accuracies.
rule cas_report:
    input:
        cas=str(RESULTS / "cas" / "{study}.json"),
        evals=get_cas_evals,
    output:
        str(RESULTS / "cas" / "{study}.md"),
    log:
        str(RESULTS / "logs" / "cas" / "{study}-report.log"),
    conda:
        "../envs/synthmath.yaml"
    script:
        "../scripts/cas_report.py"
