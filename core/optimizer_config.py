"""Optimizer options of a sweep file (``optimizer:`` block).

Every knob of the adaptive optimizer is here, typed and bounded; an unknown key is an error.
How often the model is refitted is a deployment matter and lives in the global settings
(``optimizer_interval``).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: ``optimizer.sampler``: the Gaussian-process model, a random order, a Sobol order
Sampler = Literal["gp", "random", "sobol"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)
#: ``optimizer.early_stopping.rule``: how a running experiment's reported curve is judged
StoppingRuleName = Literal["median", "percentile", "asha"]
STOPPING_RULES: tuple[str, ...] = get_args(StoppingRuleName)
#: ``optimizer.early_stopping.compare``: what of a peer's curve a run's best value is compared with
Comparison = Literal["best", "running_average"]


class EarlyStoppingConfig(BaseModel):
    """When to stop an experiment before it has spent its full budget (``optimizer.early_stopping``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    median_rule: bool = Field(
        True,
        description="judge the curves that runs report (false: only shots as a budget stops runs)",
    )
    rule: StoppingRuleName = Field(
        "median",
        description="median: stop a run whose best value is worse than the median of its peers' "
        "(see `compare`) at its step; percentile: the same against the `percentile`-th "
        "percentile; asha: successive-halving rungs at grace_steps * reduction_factor**k steps, "
        "where a run goes on only in the best 1/reduction_factor of the runs that reached the rung",
    )
    compare: Comparison = Field(
        "best",
        description="median and percentile: compare a run's best value so far with its peers' best "
        "values at the same step (like with like), or with their running averages (Vizier's rule, "
        "which smooths noisy curves but trails curves that share a large early fall)",
    )
    percentile: float = Field(
        50.0,
        gt=0,
        lt=100,
        description="percentile rule: a run must be at least this good (lower: stricter; 50 is the median)",
    )
    reduction_factor: int = Field(
        3, ge=2, description="asha (and shots as a budget): the share 1/reduction_factor of a rung goes on"
    )
    grace_steps: int = Field(
        3,
        ge=0,
        description="intermediate values a run reports before it may be stopped (asha: the first rung)",
    )
    min_completed: int = Field(
        5,
        ge=1,
        description="completed curves the median and percentile rules need at a step; "
        "asha and shots as a budget: runs a rung needs before it decides",
    )
    min_peers: int = Field(
        3,
        ge=1,
        description="median and percentile, before min_completed curves are complete: runs "
        "(running, stopped or complete) that must have reached a step before a run is judged there",
    )
    curve_model: bool = Field(
        True,
        description="median and percentile: where a curve's shape shows, judge its end instead of "
        "its current value: stop a run only when even the optimistic end of its curve, fitted as "
        "a + b*exp(-t/tau), loses against its peers' at the same step (a slow starter that would "
        "cross them goes on); a curve that is mostly noise is judged by its value alone",
    )
    low_fidelity_share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="run first at this share of the full shots; promote to full shots "
        "only when the upper confidence bound can beat the incumbent",
    )
    promotion_beta: float = Field(2.0, gt=0, description="width (in standard deviations) of that bound")
    max_stopped_share: float = Field(
        0.95,
        ge=0,
        le=1,
        description="never stop more than this share of a sweep (a safety net: a working rule stops "
        "up to nine in ten runs of a noisy sweep; `status` counts the stops the cap refused)",
    )


class OptimizerConfig(BaseModel):
    """Adaptive-sampling options of a sweep."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fit_violations: bool = Field(
        False,
        description="fit runs whose validation verdict is a violation (a metric outside its "
        "validation bounds); by default they are kept out of the model",
    )
    sampler: Sampler = Field(
        "gp",
        description="what orders pending experiments: the Gaussian-process model (gp), a seeded "
        "random order (random), or a scrambled Sobol sequence mapped to the nearest points (sobol)",
    )
    startup_points: int | None = Field(
        None,
        ge=1,
        description="space-filling points run before the model decides; default max(6, varying parameters)",
    )
    coverage_share: float = Field(
        0.2, ge=0, le=1, description="share of runs kept space-filling (the startup points count towards it)"
    )
    acquisition: Literal["ei", "ucb"] = "ei"
    ucb_beta: float = Field(2.0, gt=0, description="UCB exploration weight, in standard deviations")
    batch_strategy: Literal["kriging_believer", "constant_liar", "none"] = Field(
        "kriging_believer",
        description="how experiments in flight and earlier picks of a batch are fantasized",
    )
    liar: Literal["best", "mean", "worst"] = Field("worst", description="constant liar's value")
    batch_size: int = Field(
        8,
        ge=1,
        description="head positions planned batch-aware at each refit; keep it at least the publish window",
    )
    output_warping: Literal["none", "yeo-johnson"] = Field(
        "none",
        description="Yeo-Johnson transform of results before standardizing, when it spreads the "
        "values near the optimum (objectives with a long tail of poor values)",
    )
    multi_objective: Literal["weighted", "pareto"] = Field(
        "weighted",
        description="weighted sum of z-scores, or ParEGO scalarizations that cover the Pareto front",
    )
    refinement: bool = Field(False, description="add new points inside promising regions to the sweep")
    refinement_points: int = Field(4, ge=1, description="refinement points added at most per refit")
    region_count: int = Field(3, ge=1, description="promising regions reported (and refined)")
    region_width: float = Field(2.0, gt=0, description="half-width of a region, in length scales")
    explore_regions: int = Field(
        0, ge=0, description="boxes around the best-scored pending points that refinement also searches"
    )
    max_training_points: int = Field(
        1000,
        ge=10,
        description="results the model conditions on; above it, the best and a space-filling subset",
    )
    fit_points: int = Field(150, ge=10, description="results used to fit the kernel hyperparameters")
    candidate_shortlist: int = Field(
        1500,
        ge=10,
        description="pending points scored exactly; the rest are screened by mean and a variance bound",
    )
    early_stopping: EarlyStoppingConfig = Field(
        default_factory=lambda: EarlyStoppingConfig.model_validate({})
    )

    @model_validator(mode="after")
    def _model_options_need_the_gp(self) -> OptimizerConfig:
        # options that only a model can act on would be silently ignored by the other samplers
        if self.sampler != "gp":
            if self.refinement:
                raise ValueError(
                    f"optimizer.refinement needs a model, and sampler '{self.sampler}' has none; "
                    "set optimizer.sampler: gp or remove optimizer.refinement"
                )
            if self.early_stopping.low_fidelity_share is not None:
                raise ValueError(
                    f"optimizer.early_stopping.low_fidelity_share needs a model to decide which "
                    f"low-shot runs to promote, and sampler '{self.sampler}' has none; set "
                    "optimizer.sampler: gp or remove low_fidelity_share"
                )
        return self

    def startup_for(self, n_parameters: int) -> int:
        """The startup design's size for a space with ``n_parameters`` varying parameters.

        max(6, parameters): a model needs about one point per parameter. Measured on the benchmark
        (4 in flight, 20 seeds): in 6-D, 6 points found Hartmann6's global basin as often as 10
        and left four more runs to the model by run 20; Branin (2-D) did as well with 6 as with 8.
        """
        return self.startup_points if self.startup_points is not None else max(6, n_parameters)
