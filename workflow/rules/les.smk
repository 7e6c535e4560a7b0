# A-posteriori test: every closure inside an LES of each target, scored against the
# filtered DNS of the target's test members (turbtl/aposteriori.py).


rule aposteriori:
    """No closure, Smagorinsky, zero shot, TL at every layer, fine-tune-all and full-target data, inside one batched LES."""
    input:
        model=P.BASE_MODEL,
        data=lambda wc: P.FILTERED.format(system=wc.target),
        weights=expand(P.TL_LAYER_WEIGHTS, layer=LAYERS, allow_missing=True),
        baselines=expand(P.TL_BASELINE_WEIGHTS, method=LES_BASELINES, allow_missing=True),
    output:
        json=P.APOSTERIORI,
        stats=P.LES_STATS,
    log:
        P.log("aposteriori", "{target}"),
    benchmark:
        P.bench("aposteriori", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        layers=LAYERS,
        methods=LES_BASELINES,
        les=config["les"],
        cfl_max=config["dns"]["cfl_max"],
        device=config["device"],
    script:
        "../scripts/aposteriori.py"


rule figure_aposteriori:
    """Spectra and vorticity PDFs of every closure over the filtered DNS; a-posteriori error against re-trained layer."""
    input:
        aposteriori=P.APOSTERIORI,
        stats=P.LES_STATS,
        summary=P.SWEEP_SUMMARY,
        comparison=P.COMPARISON,
    output:
        report(
            P.FIG_APOSTERIORI,
            caption="../report/aposteriori.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "a posteriori"},
        ),
    log:
        P.log("figure_aposteriori", "{target}"),
    benchmark:
        P.bench("figure_aposteriori", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/figure_aposteriori.py"
