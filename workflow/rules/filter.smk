rule filter:
    """Filter and coarse-grain the DNS to the LES grid; the SGS term Pi; spectra."""
    input:
        P.DNS,
    output:
        data=P.FILTERED,
        spectra=P.FILTERED_SPECTRA,
    log:
        P.log("filter", "{system}"),
    benchmark:
        P.bench("filter", "{system}")
    params:
        system=sys_cfg,
        filter=config["filter"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=filter_mem_mb,
        runtime=60,
    conda:
        "../../envs/turbtl.yaml"
    script:
        "../scripts/filter.py"
