# Spectral diagnostics, the best-layer prediction (made before any re-training) and the
# leaf figures.  `predict` depends only on the base model and the data: never on the
# sweep, so that it is a true forecast (tests/test_workflow.py checks this in the DAG).


rule base_kernels:
    """Kernel spectra, low/high/band-pass/Gabor labels and k-means clusters of every layer of the base network."""
    input:
        model=P.BASE_MODEL,
    output:
        P.BASE_KERNELS,
    log:
        P.log("base_kernels"),
    benchmark:
        P.bench("base_kernels")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        n_les=config["systems"][BASE]["n_les"],
    script:
        "../scripts/base_kernels.py"


rule system_spectra:
    """Angle-averaged spectra of filtered psi, omega and Pi: base against target, and their ratio."""
    input:
        base=P.FILTERED_SPECTRA.format(system=BASE),
        target=lambda wc: P.FILTERED_SPECTRA.format(system=wc.target),
    output:
        P.SYSTEM_SPECTRA,
    log:
        P.log("system_spectra", "{target}"),
    benchmark:
        P.bench("system_spectra", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/system_spectra.py"


rule tl_kernels:
    """What TL changed: per kernel of each re-trained layer, weight and spectral change."""
    input:
        model=P.BASE_MODEL,
        base_kernels=P.BASE_KERNELS,
        weights=expand(P.TL_LAYER_WEIGHTS, layer=LAYERS, allow_missing=True),
    output:
        P.TL_KERNELS,
    log:
        P.log("tl_kernels", "{target}"),
    benchmark:
        P.bench("tl_kernels", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        layers=LAYERS,
        n_les=lambda wc: config["systems"][wc.target]["n_les"],
        percentile=config["diagnostics"]["change_percentile"],
    script:
        "../scripts/tl_kernels.py"


rule activations:
    """Activation spectra per layer: base net on base data, base net on target data, TL nets on target data."""
    input:
        model=P.BASE_MODEL,
        base=P.FILTERED.format(system=BASE),
        target=lambda wc: P.FILTERED.format(system=wc.target),
        weights=expand(P.TL_LAYER_WEIGHTS, layer=LAYERS, allow_missing=True),
    output:
        P.ACTIVATIONS,
    log:
        P.log("activations", "{target}"),
    benchmark:
        P.bench("activations", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=30,
    params:
        layers=LAYERS,
        samples=config["diagnostics"]["activation_samples"],
        device=config["device"],
    script:
        "../scripts/activations.py"


rule predict:
    """Score every layer before any re-training: spectral, marginal, framework, gradient, probe, deepest, shallowest."""
    input:
        model=P.BASE_MODEL,
        base=P.FILTERED.format(system=BASE),
        target=lambda wc: P.FILTERED.format(system=wc.target),
    output:
        P.PREDICTION,
    log:
        P.log("predict", "{target}"),
    benchmark:
        P.bench("predict", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=30,
    params:
        layers=LAYERS,
        n_small=N_SMALL,
        transfer=keys("transfer", "seeds", "subset_seed", "batch_size", "lr"),
        predict=config["predict"],
        samples=config["diagnostics"]["activation_samples"],
        device=config["device"],
    script:
        "../scripts/predict.py"


# transfer.fractions: the predict job itself at another small-set size n (the first seed's draw of
# n snapshots): the same inputs, definitions and settings, only the size and the paths differ
use rule predict as predict_size with:
    output:
        P.SIZE_PREDICTION,
    log:
        P.log("predict_size", "{target}/n{n}"),
    benchmark:
        P.bench("predict_size", "{target}/n{n}")
    params:
        n_small=lambda wc: int(wc.n),


rule compare:
    """Each predictor against the empirical sweep: regret, hit (paired test), Spearman rho, cost."""
    input:
        prediction=P.PREDICTION,
        sweep=P.SWEEP_CSV,
    output:
        P.COMPARISON,
    log:
        P.log("compare", "{target}"),
    benchmark:
        P.bench("compare", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        alpha=config["transfer"]["alpha"],
    script:
        "../scripts/compare.py"


rule figures_target:
    """The leaf figures of one target."""
    input:
        sweep=P.SWEEP_CSV,
        summary=P.SWEEP_SUMMARY,
        prediction=P.PREDICTION,
        comparison=P.COMPARISON,
        tl_kernels=P.TL_KERNELS,
        activations=P.ACTIVATIONS,
        system_spectra=P.SYSTEM_SPECTRA,
    output:
        best_layer=report(
            P.FIG_BEST_LAYER,
            caption="../report/best_layer.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "best layer"},
        ),
        kernels=report(
            P.FIG_KERNELS,
            caption="../report/kernels.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "kernel spectra"},
        ),
        activations=report(
            P.FIG_ACTIVATIONS,
            caption="../report/activations.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "activation spectra"},
        ),
        system_spectra=report(
            P.FIG_SYSTEM_SPECTRA,
            caption="../report/system_spectra.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "system spectra"},
        ),
    log:
        P.log("figures_target", "{target}"),
    benchmark:
        P.bench("figures_target", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        base=BASE,
    script:
        "../scripts/figures_target.py"


rule summary:
    """Every predictor over every target: hit rate, mean and worst regret, Spearman, cost."""
    input:
        comparisons=expand(P.COMPARISON, target=TARGETS),
        aposteriori=expand(P.APOSTERIORI, target=TARGETS) if LES else [],
    output:
        table=P.SUMMARY_CSV,
        by_target=P.SUMMARY_BY_TARGET,
        html=report(P.SUMMARY_HTML, caption="../report/summary_table.rst", category="summary", labels={"figure": "tables"}),
        figure=report(P.FIG_SUMMARY, caption="../report/summary.rst", category="summary", labels={"figure": "summary"}),
    log:
        P.log("summary"),
    benchmark:
        P.bench("summary")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        targets=TARGETS,
    script:
        "../scripts/summary.py"
