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
    # dns: the keys that decide the result (nonlinear, the form of the advection term, among them),
    # in the config's order (params are a rerun trigger,
    # compared as text); the script reads the speed and resume settings checkpoint_minutes,
    # cuda_graph, compile, band and prune from the config, so changing them reruns nothing.  A job cut off
    # (SIGTERM at a Slurm time limit, Ctrl-C, a crash) leaves its state in
    # results/dns/.{system}.nc.resume/ (not an output: Snakemake keeps it) and its rerun
    # continues from there (turbtl/solver.py, Resume).
    params:
        system=dns_sys_cfg,
        dns={k: v for k, v in config["dns"].items() if k not in ("checkpoint_minutes", "cuda_graph", "compile", "band", "prune")},
        device=config["device"],
    script:
        "../scripts/dns.py"
