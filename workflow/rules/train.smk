rule train_base:
    """Train the CNN closure on the base flow's training members."""
    input:
        data=P.FILTERED.format(system=BASE),
    output:
        model=P.BASE_MODEL,
        metrics=P.BASE_METRICS,
        history=P.BASE_HISTORY,
    log:
        P.log("train_base"),
    benchmark:
        P.bench("train_base")
    params:
        network=config["network"],
        training=config["training"],
        device=config["device"],
        resume=P.BASE_RESUME,
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        runtime=240,
    conda:
        "../../envs/turbtl.yaml"
    script:
        "../scripts/train_base.py"
