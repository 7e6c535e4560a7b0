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
    conda:
        "../../envs/turbtl.yaml"
    threads: 1
    resources:
        mem_mb=filter_mem_mb,
        runtime=60,
    params:
        system=sys_cfg,
        filter=config["filter"],
        device=config["device"],
    script:
        "../scripts/filter.py"
