"""What a package declares: its paper, its experiments, its claims and derived metrics."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SCALES = ("smoke", "cpu", "full")


class ReproError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


@dataclass(frozen=True)
class Paper:
    """The paper a package reproduces."""

    title: str
    package: str
    arxiv: str | None = None
    code: str | None = None  # the official code, when there is one
    venue: str | None = None


@dataclass(frozen=True)
class Experiment:
    """One experiment: a function run once per seed, with a resolved config per scale.

    ``fn(cfg, seed, ctx) -> dict`` must be a top-level function (worker processes pickle it). A
    scale whose config is ``None`` is not offered by this experiment; ``version`` is part of the
    resume key, so bump it when ``fn`` changes in a way that invalidates earlier units.

    ``version`` is one string for every scale, or a mapping ``{scale: version}`` naming every scale
    the experiment offers, for a change that only one scale computes (e.g. a fix of the ``--scale
    full`` path that must not invalidate the committed cpu units):
    ``version={"smoke": "3", "cpu": "3", "full": "3+full2"}``. A string and a mapping that gives
    every scale that same string make the same resume keys.

    ``seeds`` (optional) gives this experiment its own seed list per scale, e.g.
    ``seeds={"cpu": (3, 4, 5)}`` for a confirmatory arm that must run on fresh seeds. At a scale it
    names, the experiment runs exactly those seeds, whatever ``--seeds`` says (its seeds are part of
    its protocol); at any other scale, and when ``seeds`` is None, it runs the run's seed list
    (``--seeds`` or the package's default), as before. A unit's resume key does not include the
    list, so declaring it does not invalidate units of seeds that stay in it. Derived metrics are
    computed on the seeds that all the experiments they read share (see ``Derived``).

    ``fixed_hash_seed`` (optional, default False) is for code whose results depend on Python's
    per-process string-hash order, such as set iteration over strings inside a third-party metric:
    each unit of the experiment then always runs with ``PYTHONHASHSEED=0`` (in a spawned child
    process when the current one was started otherwise; ``runner.run_unit``), so that it is
    reproducible from any entry point. It is not part of the resume key: bump ``version`` when
    setting it. With the default, units run in-process under whatever hash seed the process has.
    """

    name: str
    fn: Callable[..., Mapping[str, Any]]
    configs: Mapping[str, Mapping[str, Any] | None]
    version: str | Mapping[str, str] = "1"
    description: str = ""
    seeds: Mapping[str, Sequence[int]] | None = None
    fixed_hash_seed: bool = False

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", self.name):
            raise ValueError(f"experiment name {self.name!r} must be [A-Za-z0-9_.-]+ (it names a directory)")
        unknown = set(self.configs) - set(SCALES)
        if unknown:
            raise ValueError(f"experiment {self.name!r}: unknown scales {sorted(unknown)}; use {SCALES}")
        self._check_version()
        if self.seeds is not None:
            if not isinstance(self.seeds, Mapping):
                raise ValueError(
                    f"experiment {self.name!r}: seeds must map a scale to a seed list, "
                    f"e.g. {{'cpu': (3, 4, 5)}}, got {self.seeds!r}"
                )
            unknown = set(self.seeds) - set(SCALES)
            if unknown:
                raise ValueError(
                    f"experiment {self.name!r}: seeds for unknown scales {sorted(unknown)}; use {SCALES}"
                )
            for scale, seeds in self.seeds.items():
                check_seed_list(seeds, f"experiment {self.name!r}: seeds[{scale!r}]")

    def _check_version(self) -> None:
        what = f"experiment {self.name!r}: version"
        if isinstance(self.version, str):
            return
        if not isinstance(self.version, Mapping):
            raise ValueError(f"{what} must be a string or a mapping {{scale: string}}, got {self.version!r}")
        unknown = set(self.version) - set(SCALES)
        if unknown:
            raise ValueError(f"{what} names unknown scales {sorted(unknown)}; use {SCALES}")
        offered = {s for s, c in self.configs.items() if c is not None}
        missing = offered - set(self.version)
        if missing:
            # no silent default: a scale left out would resume under another scale's version
            raise ValueError(f"{what} must name every scale the experiment offers; missing {sorted(missing)}")
        bad = {s: v for s, v in self.version.items() if not isinstance(v, str)}
        if bad:
            raise ValueError(f"{what}: versions must be strings, got {bad!r}")

    def config(self, scale: str) -> Mapping[str, Any] | None:
        return self.configs.get(scale)

    def version_at(self, scale: str) -> str:
        """The version in the resume key of this experiment's units at ``scale``."""
        if isinstance(self.version, str):
            return self.version
        if scale not in self.version:
            raise ValueError(f"experiment {self.name!r} has no version for scale {scale!r}")
        return self.version[scale]

    def seeds_for(self, scale: str, run_seeds: Sequence[int]) -> list[int]:
        """The seeds this experiment runs at ``scale``: its own list there, else the run's."""
        own = None if self.seeds is None else self.seeds.get(scale)
        return list(run_seeds if own is None else own)


def check_seed_list(seeds: Any, what: str) -> None:
    """A seed list is a non-empty sequence of distinct non-negative ints; raises ValueError naming ``what``."""
    if isinstance(seeds, str | bytes) or not isinstance(seeds, Sequence):
        raise ValueError(f"{what} must be a list or tuple of seeds, got {seeds!r}")
    if not seeds:
        raise ValueError(f"{what} is empty")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ValueError(f"{what}: seeds must be non-negative integers, got {list(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{what}: seeds must be distinct, got {list(seeds)}")


@dataclass(frozen=True)
class Derived:
    """A metric computed per seed from that seed's metrics of all experiments (paired across methods).

    ``fn`` receives ``{"<experiment>/<metric>": value}`` for one seed and returns a number.
    When experiments run on different seeds (``Experiment.seeds``), a derived metric is computed
    on the seeds shared by every experiment (and earlier derived metric) it reads, and only there;
    one whose inputs share no seed is a ``ReproError`` before any unit runs.
    """

    name: str
    fn: Callable[[Mapping[str, float]], float]
    scales: tuple[str, ...] | None = None  # computed only at these scales (None: every scale)


def difference(a: str, b: str, *, scale: float = 1.0) -> Callable[[Mapping[str, float]], float]:
    """A ``Derived`` function: ``scale * (m[a] - m[b])``, the paired per-seed difference of two metrics
    named ``"<experiment>/<metric>"`` (e.g. ``scale=100`` turns an accuracy gap into points)."""

    def fn(m: Mapping[str, float]) -> float:
        return scale * (m[a] - m[b])

    return fn


_CHECK = re.compile(r"^\s*(>=|<=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
AGGREGATES = ("mean", "min", "max", "all")


@dataclass(frozen=True)
class Claim:
    """One checkable statement of the paper, evaluated on the measured numbers.

    ``check`` is a comparison with a number (``">= 0.9"``). ``agg`` says what is compared:
    ``"mean"``: the seeds' mean, with the bootstrap 95% CI deciding between holds / fails /
    inconclusive; ``"min"``/``"max"``: the smallest/largest per-seed value (a worst-case claim such
    as "in every seed"); ``"all"``: a per-seed boolean metric that must be true for every seed.
    """

    id: str
    statement: str
    metric: str
    check: str = "> 0.5"
    paper: str = ""
    agg: str = "mean"
    note: str = ""
    # judged only at these scales (None: every scale), e.g. a claim whose experiment is too slow
    # for smoke; a claim outside its scales is left out of result.json rather than "not measured"
    scales: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.scales is not None and set(self.scales) - set(SCALES):
            raise ValueError(f"claim {self.id!r}: unknown scales {self.scales}; use {SCALES}")
        if self.agg not in AGGREGATES:
            raise ValueError(f"claim {self.id!r}: agg must be one of {AGGREGATES}, got {self.agg!r}")
        if self.agg != "all" and not _CHECK.match(self.check):
            raise ValueError(f"claim {self.id!r}: check {self.check!r} must look like '>= 0.9'")

    @property
    def op_threshold(self) -> tuple[str, float]:
        if self.agg == "all":
            return ("==", 1.0)
        m = _CHECK.match(self.check)
        assert m is not None
        return m.group(1), float(m.group(2))
