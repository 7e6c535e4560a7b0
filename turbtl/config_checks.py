"""The checks of a config that a JSON schema cannot express: grids, time steps, splits, the
filter against the forcing, the a-posteriori LES's settings, flow names YAML misreads.  Each
returns messages that name the field and the fix; :func:`turbtl.config.validate_config` runs
them before any job starts.  The small-set sizes and their checks are :mod:`turbtl.config_sizes`.
"""
from __future__ import annotations

import math

from . import TurbtlError
from .config_sizes import base_train_snapshots, small_set_problems, small_set_size, small_set_sizes
from .equation import is_forced
from .solver import FlowParams, check_timestep

__all__ = ["name_types", "cross_checks", "config_warnings", "device_problems", "dns_params", "DNS_KEYS", "DNS_OPTIONAL_KEYS",
           "FILTER_MIN_FORCING", "les_window", "MAX_NAME_LENGTH"]

#: the longest flow name: names become file names (results/filtered/{name}_spectra.nc, the DNS's
#: resume folder .{name}.nc.resume), which most file systems cap at 255 bytes
MAX_NAME_LENGTH = 100
#: what the DNS job reads of a flow: not the LES grid or the data splits, so that changing
#: those reruns the filter and what follows, never the (expensive) DNS
DNS_KEYS = ("Re", "kf", "beta", "mu", "n_dns", "dt", "spinup_time", "sample_interval", "snapshots_per_member",
            "members", "seed")
#: ... and, where set, a decaying flow's keys (absent from a forced flow's params, whose DNS
#: then keeps the params, and the outputs, it had before these keys existed)
DNS_OPTIONAL_KEYS = ("forcing", "initial_energy")


def _is_multiple(a, b, tol=1e-6) -> bool:
    r = a / b
    if not abs(r) < 1e15:  # (b tiny next to a: too many steps to tell; not a multiple anyone means)
        return False
    return abs(r - round(r)) < tol * max(1.0, abs(r))


def name_types(cfg) -> list[str]:
    """Flow names that YAML read as numbers or booleans (``3000:``, ``no:``), before the schema,
    whose name pattern applies to strings only."""
    p = []
    systems = cfg.get("systems")
    names = list(systems) if isinstance(systems, dict) else []
    names += [t for t in cfg.get("targets") or [] if not isinstance(t, str)] if isinstance(cfg.get("targets"), list) else []
    if "base" in cfg and not isinstance(cfg["base"], str):
        names.append(cfg["base"])
    # (numbers and booleans; another type, a list say, is the schema's to name)
    for name in dict.fromkeys(n for n in names if isinstance(n, (bool, int, float))):
        if isinstance(name, bool):
            what, eg = "a boolean (YAML 1.1 reads yes, no, on, off, true and false so)", "quote it, or rename it"
        else:
            what, eg = "a number", f"e.g. 'flow{name}'"
        p.append(f"flow name {name!r} is read by YAML as {what}, not a name; fix: flow names start with a letter "
                 f"and use only letters, digits, '_' and '-' ({eg}), under `systems:` and in `base`/`targets`")
    return p


def _grid_problems(w: str, n: int, m: int) -> list[str]:
    """The DNS grid ``n`` and LES grid ``m`` of flow ``w`` ("systems.<name>") on their own: even,
    the LES grid coarser than the DNS's, dividing it, and inside its 2/3 band."""
    p = []
    if n % 2:
        eg = m * max(2, round(n / m)) if m % 2 == 0 and m < n else n + 1
        p.append(f"{w}.n_dns = {n} is odd; fix: use an even grid size (e.g. {eg})")
    even = [d for d in range(2, n // 2 + 1, 2) if n % d == 0] if n % 2 == 0 else []
    if m % 2:
        eg = f"{min(even, key=lambda d: (abs(d - m), -d))}, a divisor of n_dns = {n}" if even else m + 1
        p.append(f"{w}.n_les = {m} is odd; fix: use an even grid size (e.g. {eg})")
    if m > n:
        p.append(f"{w}.n_les = {m} is larger than n_dns = {n}; fix: the LES grid must be coarser "
                 "than the DNS grid (n_les <= n_dns)")
    elif m % 2 and even:
        pass  # the fix above names an even divisor of n_dns
    elif n % m:
        p.append(f"{w}.n_les = {m} does not divide n_dns = {n}; fix: choose n_dns a multiple of n_les "
                 f"(e.g. {m * max(2, round(n / m))})")
    elif 3 * (m // 2 - 1) >= n:  # the filter's condition (turbtl.filters.sgs_fields): n_les = n_dns here
        p.append(f"{w}.n_les = {m} is too fine for n_dns = {n}: the LES modes must lie inside the DNS's "
                 f"2/3-dealiased band |k| < n_dns/3; fix: make n_dns at least twice n_les (e.g. {2 * m}) "
                 f"or lower n_les to a divisor of n_dns up to {n // 2}")
    return p


def cross_checks(cfg) -> list[str]:
    p = []
    systems = cfg["systems"]
    names = sorted(systems)
    if cfg["base"] not in systems:
        p.append(f"base = {cfg['base']!r} is not a defined system; fix: use one of {names} "
                 "or add it under `systems:`")
    for t in cfg["targets"]:
        if t not in systems:
            p.append(f"targets: {t!r} is not a defined system; fix: add systems.{t} or remove it "
                     f"from `targets` (defined: {names})")
    dups = sorted({t for t in cfg["targets"] if cfg["targets"].count(t) > 1})
    if dups:
        p.append(f"targets: {dups} listed more than once; fix: list each target once")
    if cfg["base"] in cfg["targets"]:
        p.append(f"targets: the base flow {cfg['base']!r} is also a target; fix: remove it from `targets`")
    for name in names:
        if name.endswith("_spectra"):  # results/filtered/{name}.nc would be the spectra file of flow name[:-8]
            p.append(f"systems.{name}: flow names ending in '_spectra' are reserved (results/filtered/<flow>_spectra.nc "
                     f"is the filter's spectra file of <flow>); fix: rename it, e.g. {name[:-8] + '_spec'!r}")
        if len(name) > MAX_NAME_LENGTH:
            p.append(f"systems.{name[:20]}...: a flow name of {len(name)} characters (names become file names); "
                     f"fix: shorten it to at most {MAX_NAME_LENGTH}")
        elif (piece := _periodic(name)) is not None:
            p.append(f"systems.{name}: the name ends in {piece!r} repeated {PERIODIC_MIN} times or more, which Snakemake "
                     "refuses as a file-name wildcard (it reads it as a rule calling itself without end); fix: "
                     "rename the flow")
    running = _running(cfg)
    for i, a in enumerate(running):
        for b in running[i + 1:]:
            if dns_params(systems[a]) == dns_params(systems[b]):
                p.append(f"systems.{b} has the same DNS parameters and seed as systems.{a}, so its DNS would repeat "
                         f"{a}'s trajectory (a copied block left unedited?); fix: change {b}'s parameters and give "
                         "it its own seed")
    bad_grid = set()  # flows whose grids are wrong: their LES time step is not checked (noise)
    base = systems.get(cfg["base"])
    m0 = base["n_les"] if base and not _grid_problems("", base["n_dns"], base["n_les"]) else None
    for name, s in systems.items():
        w = f"systems.{name}"
        n, m = s["n_dns"], s["n_les"]
        if m0 is not None and name in cfg["targets"] and m != m0:
            # one LES grid: the network's data, and the predictors' shell-by-shell spectra; the fix
            # is the base's n_les, so this flow's own n_les is not checked further
            dns = f", and n_dns a multiple of it such as {m0 * max(2, round(n / m0))}" if _grid_problems("", n, m0) else ""
            p.append(f"{w}.n_les = {m} differs from the base's n_les = {m0}: the network is trained and re-trained on "
                     "one LES grid, and the predictors compare base and target spectra shell by shell (their predict "
                     f"and activations jobs would fail after the sweep); fix: set {w}.n_les: {m0}{dns}")
            bad_grid.add(name)
            m = m0
        else:
            grid = _grid_problems(w, n, m)
            p += grid
            if grid:
                bad_grid.add(name)
        if 3 * s["kf"] >= m:
            p.append(f"{w}.kf = {s['kf']} is not resolved on the LES grid n_les = {m} (need kf < n_les/3 = "
                     f"{m / 3:.1f}); fix: lower kf or raise n_les to more than {3 * s['kf']}")
        if s["val_members"] + s["test_members"] >= s["members"]:
            p.append(f"{w}.members = {s['members']} leaves no training member after val_members = "
                     f"{s['val_members']} and test_members = {s['test_members']}; fix: raise members")
        if not _is_multiple(s["sample_interval"], s["dt"]):
            p.append(f"{w}.sample_interval = {s['sample_interval']} is not a multiple of dt = {s['dt']}; "
                     "fix: make it a whole number of time steps")
        if not _is_multiple(s["spinup_time"], s["dt"]) and s["spinup_time"] > 0:
            p.append(f"{w}.spinup_time = {s['spinup_time']} is not a multiple of dt = {s['dt']}; "
                     "fix: make it a whole number of time steps")
        try:  # the solver's own a-priori screen (laminar velocity bound, Rossby waves under AB2)
            check_timestep(FlowParams.from_config(s, name), cfg["dns"]["cfl_max"], divides=s["sample_interval"])
        except TurbtlError as e:
            p.append(str(e))
    p += _filter_problems(cfg["filter"], {k: v for k, v in systems.items() if k not in bad_grid})
    p += [m for m in _les_problems(cfg, skip=bad_grid) if m not in p]  # e.g. a missing initial_energy: said once
    depth, k = cfg["network"]["depth"], cfg["network"]["kernel_size"]
    if k % 2 == 0:
        p.append(f"network.kernel_size = {k} is even; fix: use an odd size such as 5")
    m_min = min((s["n_les"] for s in systems.values() if isinstance(s.get("n_les"), int)), default=None)
    if m_min is not None and k > m_min:
        p.append(f"network.kernel_size = {k} is larger than the LES grid n_les = {m_min}: a convolution's padding "
                 f"cannot wrap a kernel wider than the field; fix: a kernel size of at most {m_min - 1 + m_min % 2} "
                 "(reference 5)")
    if cfg["transfer"]["pairs"] and (depth if cfg["transfer"]["layers"] == "all" else len(cfg["transfer"]["layers"])) < 2:
        p.append("transfer.pairs = true needs at least two layers to pair, but transfer.layers (with network.depth) "
                 "gives one; fix: list more layers in transfer.layers (or \"all\"), or set transfer.pairs: false")
    if cfg["transfer"]["layers"] != "all":
        bad = [i for i in cfg["transfer"]["layers"] if not 1 <= i <= depth]
        if bad:
            p.append(f"transfer.layers = {bad} outside 1..network.depth = {depth}; fix: use layer numbers "
                     f"from 1 to {depth} or \"all\"")
    if not p and cfg["base"] in systems:  # the sizes need a valid base and valid members
        p += small_set_problems(cfg)
    return p


#: above this CFL number AB2 with this scheme is near its stability limit (0.25-0.3): config_warnings
CFL_STABLE = 0.3
#: Snakemake refuses a wildcard value that ends in a piece repeated this many times or more
#: (snakemake.io.PeriodicityDetector's default, its guard against a rule that calls itself)
PERIODIC_MIN = 20


def _periodic(name: str) -> str | None:
    """The piece that ``name`` ends in, repeated PERIODIC_MIN to 100 times, as Snakemake detects it; else None."""
    from snakemake.io import PeriodicityDetector

    return PeriodicityDetector(min_repeat=PERIODIC_MIN).is_periodic(name)


def device_problems(cfg: dict) -> list[str]:
    """``device: cuda`` on a machine where torch sees no CUDA device: every job would stop at its
    start.  Checked by the process that starts the jobs (its machine's torch), before any job."""
    if cfg.get("device") != "cuda":
        return []
    import torch

    if torch.cuda.is_available():
        return []
    build = "a CPU-only build" if torch.version.cuda is None else f"a CUDA {torch.version.cuda} build, but no usable GPU"
    return [f"device = 'cuda', but torch {torch.__version__} on this machine sees no CUDA device ({build}); fix: "
            "device: auto (CUDA where a job has a GPU, the CPU elsewhere; the same on a cluster), or device: cpu"]


def _running(cfg: dict) -> list[str]:
    """The flows that run, each once: the base, then the targets (those defined)."""
    return [n for n in dict.fromkeys([cfg["base"], *cfg["targets"]]) if n in cfg["systems"]]


def dns_params(system: dict, extra=()) -> dict:
    """What makes a flow's DNS, in this order: :data:`DNS_KEYS`, the :data:`DNS_OPTIONAL_KEYS`
    that are set, then the ``extra`` keys that are set (the DNS job's params: the order is
    theirs).  An explicit ``forcing: kolmogorov`` is the default written out: left out, so that
    it changes neither the params nor the DNS."""
    s = {k: v for k, v in system.items() if not (k == "forcing" and v == "kolmogorov")}
    return {k: s[k] for k in (*DNS_KEYS, *DNS_OPTIONAL_KEYS, *extra) if k in s}


def config_warnings(cfg: dict, own=None) -> list[str]:
    """What a valid config may well not mean (printed, not raised): flows defined but never run,
    flows that start from the same seed, a CFL guard above the scheme's stability limit, one TL
    seed (no paired test).  ``own``: the flows that the user's own file defines (an overlay,
    else config.yaml; :func:`turbtl.config.own_flows`), the only ones said to be idle, so that
    config.yaml's flows under a preset, and the flows others are `like`, are not (default: all)."""
    w = []
    systems = cfg["systems"]
    running = _running(cfg)
    idle = [n for n in systems if n not in running and (own is None or n in own)]
    if idle:
        one = len(idle) == 1
        w.append(f"systems {', '.join(idle)} {'is' if one else 'are'} defined but neither the base nor a target, so "
                 f"nothing runs for {'it' if one else 'them'}; add a flow's name to `targets` to run it")
    seeds: dict[int, list[str]] = {}
    for n in running:
        seeds.setdefault(int(systems[n].get("seed", 0)), []).append(n)
    for seed, group in seeds.items():
        if len(group) > 1:
            w.append(f"systems {', '.join(group)} share seed {seed}: their DNS start from related random fields "
                     "(the same one on the same grid); give each flow its own seed unless that is meant")
    if cfg["dns"]["cfl_max"] > CFL_STABLE:
        w.append(f"dns.cfl_max = {cfg['dns']['cfl_max']} is above {CFL_STABLE}, near where AB2 with this scheme loses "
                 "stability: the CFL guard would let an unstable run go on until its fields blow up")
    if cfg["transfer"]["seeds"] < 2:
        w.append(f"transfer.seeds = {cfg['transfer']['seeds']}: with one seed there is no paired test, so no best layer "
                 "can be resolved and no interval is given; use 2 or more (default 5)")
    net = cfg["network"]
    reach, m = net["depth"] * (net["kernel_size"] - 1) + 1, systems[cfg["base"]]["n_les"]
    if reach > 2 * m:
        w.append(f"network.depth = {net['depth']} with kernel_size = {net['kernel_size']} sees {reach} grid points "
                 f"across, more than twice the LES grid n_les = {m}: on the periodic domain the deeper layers add cost "
                 "and no reach; fewer layers would do")
    n_small, n_base = small_set_size(cfg), base_train_snapshots(cfg)
    for key, size, what in (("transfer.batch_size", n_small, "the small target set"),
                            ("training.batch_size", n_base, "the base training snapshots")):
        b = cfg[key.split(".")[0]]["batch_size"]
        if b > size:
            w.append(f"{key} = {b} is larger than {what} ({size} snapshots): every epoch is one step on all of them")
    fr = cfg["transfer"].get("fractions") or []
    if fr and not small_set_sizes(cfg):
        w.append(f"transfer.fractions = {fr} gives no small-set size other than transfer.fraction's "
                 f"({small_set_size(cfg)} snapshots), so no size study runs; list other fractions to run one")
    return w


#: the least share of the forcing that the filter must keep at the forcing wavenumber, G(kf)
FILTER_MIN_FORCING = 0.5


def _filter_problems(flt: dict, systems: dict) -> list[str]:
    """The filter must keep the forcing scale of every flow: G(kf) >= FILTER_MIN_FORCING on the
    forcing's modes (kf, 0) and (0, kf) (for an unforced flow, on its initial peak kf: its
    energy-containing scale, which the decay only moves to larger scales).  A wider filter puts the LES scale above the forcing
    scale: the energy injection itself becomes subgrid, and a spectral filter with pi/Delta <= kf
    (or a filter wider than the domain) removes the forcing, or every mode, outright.  One
    message, for the flow that allows the narrowest filter."""
    import torch

    from .filters import filter_width, transfer_function

    kind, wf = flt["kind"], float(flt["width_factor"])

    def g(kf, m, factor):
        return float(transfer_function(kind, torch.tensor(float(kf), dtype=torch.float64),
                                       torch.tensor(0.0, dtype=torch.float64), filter_width(m, factor)))

    worst = None
    for name, s in systems.items():
        if g(s["kf"], s["n_les"], wf) >= FILTER_MIN_FORCING:
            continue
        lo, hi = 0.0, wf  # the largest width factor that keeps the forcing: G(kf) falls with Delta up to its first zero
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if g(s["kf"], s["n_les"], mid) >= FILTER_MIN_FORCING else (lo, mid)
        if worst is None or lo < worst[1]:
            worst = (name, lo)
    if worst is None:
        return []
    name, lo = worst
    s = systems[name]
    what, scale = (("the forcing", "forcing") if is_forced(s) else
                   ("the initial spectrum's peak (forcing: none)", "energy-containing"))
    return [f"filter.width_factor = {wf:g} ({kind}) keeps only G(kf) = {g(s['kf'], s['n_les'], wf):.3g} of {what} "
            f"of systems.{name} (kf = {s['kf']}, n_les = {s['n_les']}; the least allowed is {FILTER_MIN_FORCING}): the "
            f"filter scale would lie above the {scale} scale; fix: lower filter.width_factor below {lo:.3g} "
            f"(reference 2), or raise systems.{name}.n_les"]


def les_window(les: dict, sample_interval: float, decaying: bool) -> tuple[int, str]:
    """Snapshots a start must leave after it in its test member, and the ``les`` key that asks
    for them: ``cc_time`` (the correlation with the filtered DNS), or for a decaying flow
    ``time`` where longer (its statistics are compared with the filtered DNS of the LES's own
    window, :mod:`turbtl.aposteriori`)."""
    window = round(les["cc_time"] / sample_interval)
    if decaying:
        whole = math.ceil(les["time"] / sample_interval - 1e-9)
        if whole > window:
            return whole, "time"
    return window, "cc_time"


def _les_problems(cfg: dict, skip=()) -> list[str]:
    """The a-posteriori LES of every target, checked before any work: its time step divides
    the sample interval and the statistics' sampling (``les.stats_every``) hits every sample
    time, the spin-up is shorter than the run, the correlation window (a decaying flow's
    whole run, :func:`les_window`) fits in a test member and in the run, the test members
    hold ``les.starts`` starts, and the time step passes the DNS's a-priori screen on the LES
    grid (not for the flows in ``skip``, whose grids are wrong)."""
    les = cfg.get("les") or {}
    if not les.get("enabled", False):
        return []
    p = []
    if les["spinup"] >= les["time"]:
        p.append(f"les.spinup = {les['spinup']} leaves no statistics of les.time = {les['time']}; "
                 "fix: make les.spinup smaller than les.time")
    if les["cc_time"] > les["time"] * (1 + 1e-9):
        p.append(f"les.cc_time = {les['cc_time']} is longer than les.time = {les['time']}: the correlation with the "
                 "filtered DNS is never sampled at the late lags; fix: make les.time >= les.cc_time")
    per_sample, few_starts = {}, {}
    for t in cfg["targets"]:
        s = cfg["systems"].get(t)
        if s is None:
            continue
        si = s["sample_interval"]
        if not _is_multiple(si, les["dt"]):
            p.append(f"les.dt = {les['dt']} does not divide systems.{t}.sample_interval = {si}; "
                     "fix: choose les.dt = sample_interval / k for a whole k")
        elif round(si / les["dt"]) % les["stats_every"]:
            per_sample[t] = round(si / les["dt"])
        decaying = not is_forced(s)
        window, key = les_window(les, si, decaying)
        if decaying and math.floor(les["time"] / si + 1e-9) <= math.floor(les["spinup"] / si + 1e-9):
            p.append(f"les.time = {les['time']} and les.spinup = {les['spinup']} leave no sample time of systems.{t} "
                     f"(every {si}) after the spin-up, where a decaying flow's LES is compared with its DNS; fix: "
                     "lower les.spinup or raise les.time")
        usable = s["test_members"] * (s["snapshots_per_member"] - window)
        if window >= s["snapshots_per_member"]:
            why = ("" if key == "cc_time" else f" (systems.{t} is decaying: its LES is scored against the filtered "
                   "DNS of its own time window, which must lie inside a test member)")
            p.append(f"les.{key} = {les[key]} spans {window} snapshots{why}, not fewer than "
                     f"systems.{t}.snapshots_per_member = {s['snapshots_per_member']}; fix: lower les.{key} or "
                     f"raise systems.{t}.snapshots_per_member")
        elif les["starts"] > usable:
            few_starts[t] = (usable, f"{s['test_members']} x ({s['snapshots_per_member']} - {window})", key)
        if t in skip:
            continue
        try:
            check_timestep(FlowParams.from_config(dict(s, n_dns=s["n_les"], dt=les["dt"]), t), cfg["dns"]["cfl_max"],
                           where="les", divides=si, steps_multiple=les["stats_every"])
        except TurbtlError as e:
            p.append(str(e))
    if per_sample:  # the statistics are sampled every stats_every steps: they must hit every sample time
        need = math.gcd(*per_sample.values())
        eg = max(d for d in range(1, les["stats_every"] + 1) if need % d == 0)
        p.append(f"les.stats_every = {les['stats_every']} does not divide the LES steps per sample interval "
                 f"(sample_interval / les.dt: {', '.join(f'{t} {v}' for t, v in per_sample.items())}), so the "
                 f"correlation with the filtered DNS would skip sample times; fix: choose a divisor of {need} (e.g. {eg})")
    if few_starts:
        t, (usable, how, key) = min(few_starts.items(), key=lambda kv: kv[1][0])
        p.append(f"les.starts = {les['starts']} exceeds the {usable} start snapshots of systems.{t} (test_members x "
                 f"(snapshots_per_member - les.{key} / sample_interval) = {how})"
                 + (f", and of {', '.join(k for k in few_starts if k != t)}" if len(few_starts) > 1 else "")
                 + f"; fix: lower les.starts to at most {usable}, or raise test_members or snapshots_per_member"
                 + (f", or lower les.{key}" if key == "time" else ""))
    return p
