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
    conda:
        "../../envs/turbtl.yaml"
    threads: 2
    resources:
        mem_mb=train_mem_mb,
        runtime=240,
    params:
        network=config["network"],
        training=keys("training", *config["training"]),
        device=config["device"],
        resume=P.BASE_RESUME,
    script:
        "../scripts/train_base.py"
