rule transfer_layer:
    """Re-train one layer of the base network on the small target set, for every seed."""
    input:
        model=P.BASE_MODEL,
        data=lambda wc: P.FILTERED.format(system=wc.target),
    output:
        table=P.TL_LAYER_CSV,
        weights=P.TL_LAYER_WEIGHTS,
    log:
        P.log("transfer_layer", "{target}/layer{layer}"),
    benchmark:
        P.bench("transfer_layer", "{target}/layer{layer}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        transfer=keys("transfer", "seeds", "subset_seed", "epochs", "batch_size", "lr"),
        n_small=N_SMALL,
        device=config["device"],
    script:
        "../scripts/transfer_layer.py"


rule transfer_pair:
    """transfer.pairs: re-train layers a < b together on the small target set, for every seed."""
    input:
        model=P.BASE_MODEL,
        data=lambda wc: P.FILTERED.format(system=wc.target),
    output:
        table=P.TL_PAIR_CSV,
    log:
        P.log("transfer_pair", "{target}/pair{a}_{b}"),
    benchmark:
        P.bench("transfer_pair", "{target}/pair{a}_{b}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        transfer=keys("transfer", "seeds", "subset_seed", "epochs", "batch_size", "lr"),
        n_small=N_SMALL,
        device=config["device"],
    script:
        "../scripts/transfer_pair.py"


rule pair_summary:
    """transfer.pairs: every pair beside the single layers; does a pair beat the best single layer?"""
    input:
        pairs=lambda wc: [P.TL_PAIR_CSV.format(target=wc.target, a=a, b=b) for a, b in PAIRS],
        layers=expand(P.TL_LAYER_CSV, layer=LAYERS, allow_missing=True),
    output:
        table=P.PAIRS_CSV,
        summary=P.PAIRS_SUMMARY,
        figure=report(
            P.FIG_PAIRS,
            caption="../report/pairs.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "pairs of layers"},
        ),
    log:
        P.log("pair_summary", "{target}"),
    benchmark:
        P.bench("pair_summary", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        alpha=config["transfer"]["alpha"],
    script:
        "../scripts/pair_summary.py"


rule transfer_layer_size:
    """transfer.fractions: the sweep's re-training of one layer, at another small-set size n."""
    input:
        model=P.BASE_MODEL,
        data=lambda wc: P.FILTERED.format(system=wc.target),
    output:
        table=P.TL_SIZE_LAYER_CSV,
    log:
        P.log("transfer_layer_size", "{target}/n{n}/layer{layer}"),
    benchmark:
        P.bench("transfer_layer_size", "{target}/n{n}/layer{layer}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=120,
    params:
        transfer=keys("transfer", "seeds", "subset_seed", "epochs", "batch_size", "lr"),
        device=config["device"],
    script:
        "../scripts/transfer_layer_size.py"


rule size_summary:
    """transfer.fractions: the best layer at every small-set size; does the main size's hold, and does each predictor find it?"""
    input:
        layers=lambda wc: [p for ps in size_layer_csvs(wc).values() for p in ps],
        zero_shot=lambda wc: P.TL_BASELINE_CSV.format(target=wc.target, method="zero_shot"),
        baselines=lambda wc: [p for ps in size_baseline_csvs(wc).values() for p in ps],
        predictions=lambda wc: list(size_predictions(wc).values()),
    output:
        table=P.SIZES_CSV,
        summary=P.SIZES_SUMMARY,
        predictors=P.SIZE_PREDICTORS_CSV,
        figure=report(
            P.FIG_SIZES,
            caption="../report/sizes.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "small-set sizes"},
        ),
    log:
        P.log("size_summary", "{target}"),
    benchmark:
        P.bench("size_summary", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        layer_csvs=size_layer_csvs,
        baseline_csvs=size_baseline_csvs,
        predictions=size_predictions,
        fractions=SIZES,
        main_n=N_SMALL,
        alpha=config["transfer"]["alpha"],
    script:
        "../scripts/size_summary.py"


rule transfer_baseline:
    """Baselines that give the sweep meaning: zero shot, scratch, full fine-tuning, full target data."""
    input:
        model=P.BASE_MODEL,
        data=lambda wc: P.FILTERED.format(system=wc.target),
    output:
        table=P.TL_BASELINE_CSV,
        weights=P.TL_BASELINE_WEIGHTS,
    log:
        P.log("transfer_baseline", "{target}/{method}"),
    benchmark:
        P.bench("transfer_baseline", "{target}/{method}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=240,
    params:
        transfer=keys("transfer", "seeds", "subset_seed", "epochs", "batch_size", "lr"),
        training=keys("training", "epochs", "batch_size", "lr", "augment", "amp"),
        network=config["network"],
        n_small=N_SMALL,
        device=config["device"],
    script:
        "../scripts/transfer_baseline.py"


# transfer.fractions: the small-set baselines (scratch, finetune_all) at another size n, on the
# same draws as that size's layer runs (paired); the baseline job itself, only n and the paths
# differ, and its networks are temporary (no a-posteriori LES at the extra sizes)
use rule transfer_baseline as transfer_baseline_size with:
    output:
        table=P.TL_SIZE_BASELINE_CSV,
        weights=temp(P.TL_SIZE_BASELINE_WEIGHTS),
    log:
        P.log("transfer_baseline_size", "{target}/n{n}/{method}"),
    benchmark:
        P.bench("transfer_baseline_size", "{target}/n{n}/{method}")
    params:
        n_small=lambda wc: int(wc.n),


rule sweep_summary:
    """Collect the per-layer and baseline tables; find the empirically best layer."""
    input:
        layers=expand(P.TL_LAYER_CSV, layer=LAYERS, allow_missing=True),
        baselines=expand(P.TL_BASELINE_CSV, method=METHODS, allow_missing=True),
    output:
        table=P.SWEEP_CSV,
        summary=P.SWEEP_SUMMARY,
        html=report(
            P.SWEEP_HTML,
            caption="../report/sweep_table.rst",
            category="{target}",
            labels={"target": "{target}", "figure": "sweep table"},
        ),
    log:
        P.log("sweep_summary", "{target}"),
    benchmark:
        P.bench("sweep_summary", "{target}")
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        alpha=config["transfer"]["alpha"],
    script:
        "../scripts/sweep_summary.py"
