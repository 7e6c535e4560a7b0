"""Snakemake script of rule system_spectra: base vs target spectra of psi, omega, Pi and their ratio."""
import turbtl.runtime
from turbtl.diagnostics_files import system_spectra
from turbtl.io import open_netcdf, write_netcdf

smk = snakemake  # noqa: F821
log, device = turbtl.runtime.script_setup(smk)
with open_netcdf(smk.input.base) as b, open_netcdf(smk.input.target) as t:
    b, t = b.load(), t.load()
base_name = str(b.attrs.get("name", "base"))
ds = system_spectra(b, t, base_name=base_name, target_name=str(smk.wildcards.target))
for pre, src in (("base_", b), ("target_", t)):
    for key, v in src.attrs.items():
        if isinstance(v, (int, float, str)):
            ds.attrs[pre + key] = v
write_netcdf(ds, smk.output[0])
