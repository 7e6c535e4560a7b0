"""Snakemake script of rule sweep_summary: sweep.csv, summary.json and sweep.html of one target (no torch device)."""
import turbtl.runtime
from turbtl.html_tables import sweep_frame, write_html_tables
from turbtl.sweep import summarise

smk = snakemake  # noqa: F821
log = turbtl.runtime.log_to_rule_log(smk)
out = summarise(list(smk.input.layers), list(smk.input.baselines), smk.wildcards.target,
                smk.output.table, smk.output.summary, alpha=float(smk.params.alpha))
log.info("best layer %s (runner-up %s, margin %s, paired p %s, resolved %s)", out["best_layer"], out["runner_up"],
         out["margin"], out["p_value"], out["resolved"])
p = "n/a" if out["p_value"] is None else f"{out['p_value']:.3g}"
verdict = (f"Best layer {out['best_layer']}, runner-up {out['runner_up']}: paired two-sided t-test over "
           f"{out['n_seeds']} seeds p = {p}, {'resolved' if out['resolved'] else 'not resolved'} at {out['alpha']}.")
write_html_tables(smk.output.html, f"Sweep of target {smk.wildcards.target}", [("Test scores per re-trained layer "
                  "and per baseline", sweep_frame(out))], note=verdict, mark="best")
