rule dns:
    """Pseudo-spectral DNS of one flow, all members in one batch; snapshots of omega."""
    output:
        P.DNS,
    log:
        P.log("dns", "{system}"),
    benchmark:
        P.bench("dns", "{system}")
    conda:
        "../../envs/turbtl.yaml"
    # 1 thread: at LES-study grids (128^2-256^2) the per-op work is too small for a second
    # thread to pay (measured 1.6x slower with 2); DNS jobs of several flows run side by
    # side instead.  Large grids on a cluster get more (slurm/config.yaml set-threads).
    threads: 1
    resources:
        mem_mb=dns_mem_mb,
        runtime=120,
    params:
        system=dns_sys_cfg,
        dns=config["dns"],
        device=config["device"],
    script:
        "../scripts/dns.py"
