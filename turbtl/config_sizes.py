"""The config's derived sizes: training snapshots, the small TL set of ``transfer.fraction``
and the size study's sizes (``transfer.fractions``), and the checks of those sizes against
the targets' training members and the probe predictor (:func:`small_set_problems`, run by
:func:`turbtl.config_checks.cross_checks` once the flows and splits are valid)."""
from __future__ import annotations

__all__ = ["train_snapshots", "base_train_snapshots", "small_set_size", "small_set_sizes", "small_set_problems"]


def train_snapshots(sys_cfg) -> int:
    train_members = sys_cfg["members"] - sys_cfg["val_members"] - sys_cfg["test_members"]
    return train_members * sys_cfg["snapshots_per_member"]


def base_train_snapshots(cfg) -> int:
    return train_snapshots(cfg["systems"][cfg["base"]])


def small_set_size(cfg, fraction: float | None = None) -> int:
    """Snapshots in the small target set: fraction x base training snapshots (at least 1);
    ``fraction`` defaults to ``transfer.fraction``."""
    f = cfg["transfer"]["fraction"] if fraction is None else fraction
    return max(1, int(round(f * base_train_snapshots(cfg))))


def small_set_sizes(cfg) -> dict[int, float]:
    """The size study (``transfer.fractions``): ``{snapshots: fraction}`` of every small-set
    size the single-layer sweep runs at, ``transfer.fraction``'s included, smallest first.
    Empty when ``transfer.fractions`` adds no other size (the study is off).  Two fractions
    that round to one size are a config error (:func:`cross_checks`); here the first wins."""
    main = small_set_size(cfg)
    sizes = {main: float(cfg["transfer"]["fraction"])}
    for f in cfg["transfer"].get("fractions") or []:
        sizes.setdefault(small_set_size(cfg, f), float(f))
    return dict(sorted(sizes.items())) if len(sizes) > 1 else {}


def small_set_problems(cfg: dict) -> list[str]:
    """The small set of ``transfer.fraction`` and every size of ``transfer.fractions`` against
    the targets' training members and the probe predictor (messages name the field and the fix)."""
    p = []
    n_small = small_set_size(cfg)
    for t, have in _short_targets(cfg, n_small):
        p.append(f"systems.{t}: its training members hold {have} snapshots, fewer "
                 f"than the small TL set of {n_small} (transfer.fraction x base training snapshots); "
                 f"fix: raise systems.{t}.members or snapshots_per_member, or lower transfer.fraction")
    p += _size_problems(cfg)
    if _probe_short(cfg, n_small):
        p.append(f"predict.probe_epochs = {cfg['predict']['probe_epochs']} needs a small TL set of at least 2 "
                 f"snapshots to hold one out, but it has {n_small}; fix: raise transfer.fraction or set "
                 "predict.probe_epochs: 0")
    return p


def _short_targets(cfg: dict, n: int) -> list[tuple[str, int]]:
    """``(target, training snapshots)`` of the defined targets whose training members hold fewer
    than ``n`` snapshots: too few for a small set of ``n``."""
    systems = cfg["systems"]
    have = {t: train_snapshots(systems[t]) for t in cfg["targets"] if t in systems}
    return [(t, h) for t, h in have.items() if h < n]


def _probe_short(cfg: dict, n: int) -> bool:
    """The probe predictor runs (``predict.probe_epochs`` > 0) but a small set of ``n`` cannot
    hold one snapshot out (``turbtl.probe.probe_split`` needs 2)."""
    return cfg["predict"]["probe_epochs"] > 0 and n < 2


def _size_problems(cfg: dict) -> list[str]:
    """``transfer.fractions``: every size distinct (two fractions of one size would run one
    experiment twice), within every target's training members, and of 2 snapshots or more
    where the probe predictor runs (it holds one out, at every size)."""
    p, seen = [], {small_set_size(cfg): ("transfer.fraction", cfg["transfer"]["fraction"])}
    nb = base_train_snapshots(cfg)
    for f in cfg["transfer"].get("fractions") or []:
        n = small_set_size(cfg, f)
        if n in seen and seen[n][1] != f:
            p.append(f"transfer.fractions: {f} gives a small set of {n} snapshots ({nb} base training snapshots x {f}, "
                     f"rounded), as {seen[n][0]} = {seen[n][1]} does: the same sweep twice; fix: drop {f} or give "
                     "fractions that differ by more than one snapshot")
            continue
        seen.setdefault(n, ("transfer.fractions", f))
        if _probe_short(cfg, n):  # the predictors run at every size (predict_size)
            p.append(f"transfer.fractions: {f} gives a small set of {n} snapshot, but the probe predictor "
                     f"(predict.probe_epochs = {cfg['predict']['probe_epochs']}) runs at every size and needs 2 to "
                     "hold one out; fix: drop or raise it, or set predict.probe_epochs: 0")
        p += [f"transfer.fractions: {f} needs a small set of {n} snapshots, but the training members of "
              f"systems.{t} hold {have}; fix: drop {f} (at most {have / nb:.3g} here), or raise "
              f"systems.{t}.members or snapshots_per_member" for t, have in _short_targets(cfg, n)]
    return p
