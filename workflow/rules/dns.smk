rule dns:
    """Pseudo-spectral DNS of one flow, all members in one batch; snapshots of omega."""
    output:
        P.DNS,
    log:
        P.log("dns", "{system}"),
    benchmark:
        P.bench("dns", "{system}")
    params:
        system=sys_cfg,
        dns=config["dns"],
        device=config["device"],
    threads: 2
    resources:
        mem_mb=dns_mem_mb,
        runtime=120,
    conda:
        "../../envs/turbtl.yaml"
    script:
        "../scripts/dns.py"
