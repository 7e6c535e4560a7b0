"""turbtl: explaining the physics of transfer learning in data-driven 2D turbulence closures.

One module per stage:

- :mod:`turbtl.grid`      spectral grid, wavenumbers, dealiasing mask, derivatives
- :mod:`turbtl.spectra`   angle-averaged (shell-summed) spectra shared by every stage
- :mod:`turbtl.solver`    the batched pseudo-spectral DNS and its guards
- :mod:`turbtl.filters`   filters, coarse-graining and the SGS term Pi
- :mod:`turbtl.io`        netCDF I/O, atomic writes
- :mod:`turbtl.network`   the CNN closure
- :mod:`turbtl.data`      datasets, member splits, normalisation, symmetries
- :mod:`turbtl.training`  training loop, metrics, checkpoints
- :mod:`turbtl.transfer`  per-layer transfer learning and baselines
- :mod:`turbtl.diagnostics` kernel / activation / system spectra
- :mod:`turbtl.predict`   best-layer predictors computed before re-training
- :mod:`turbtl.plots`     the leaf figures
- :mod:`turbtl.config`    config validation (schema plus cross-field checks)
- :mod:`turbtl.replicates` the verdict pooled over replicate runs
"""

__version__ = "0.1.0"


class TurbtlError(RuntimeError):
    """An error the user can fix; the message names the cause and the fix."""


class ConfigError(TurbtlError, ValueError):
    """A bad value in config.yaml; the message names the field and the fix."""
