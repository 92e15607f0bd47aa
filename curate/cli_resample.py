"""`curate resample`: draw a weighted, domain-mixed sample of a dataset to a token or row budget."""

from __future__ import annotations

import math

import click

from curate import log
from curate.cli import EXIT_CODES, _finish, cli
from curate.options import make_run_options, output_options, run_options

MATHS = """\b
Weights (--weights):
  uniform              every document weighs 1
  softdedup            SoftDedup from commonness (curate score --commonness): --segments K
                       quantile segments; segment weight (1 / its mean commonness)^--power,
                       linear between segment means, (mean/c)^power above the last; documents
                       below the --floor-quantile weigh at most that quantile's weight
  softdedup:dup_count  1 / dup_count^--power (dedup --mode annotate): every cluster as a whole
                       weighs what a unique document weighs (at power 1)
  column:NAME          a numeric column (>= 0)
  dsir                 exp(dsir_logratio)
  expr:EXPR            a numeric expression of the filter language, e.g. expr:'n_tokens / 1000'
\b
Budget: --tokens N (n_tokens when the input has it, else characters), --rows N, or --fraction F
of the input's tokens. Domains (--by COLUMN) share it by --mixture FILE (TOML domain = weight, or
DoReMi's JSON {"train_domain_weights": {...}}), by --temperature T (share proportional to
tokens^(1/T); T = inf: equal shares), or else by their natural shares. Within a domain a document
is drawn in proportion to its weight. Epochs = a domain's budget / its size: above --max-epochs a
warning, above --hard-max-epochs an error (inf: no limit). A run makes at most 10^12 draws and
draws no document more than 2^31-1 times (sample_count, epoch and repeat_index are int32): a
budget that needs more is refused.
\b
Methods: multinomial draws with replacement (default), Gumbel top-k without (--no-replacement),
FLYT soft-cap (--soft-cap LAMBDA: each pick of a document lowers its logit by LAMBDA; 0 is the
multinomial, and as LAMBDA grows it tends to the Gumbel top-k).
\b
Output: --counts (default) keeps every row and adds sample_count; --materialize writes a row
once per draw with epoch and repeat_index (rows never drawn are rejected: --rejects keeps
them). OUT/_selection.parquet lists (id, count) of the drawn documents.
"""

# A run's most draws: curate.resample.plan.MAX_DRAWS (why there; a test checks they agree).
MAX_DRAWS = 10**12
# curate.filter.quantiles.K: segment boundaries come from quantile summaries whose rank error is
# below 1/K of the documents, so finer segments would only split that error (a test checks).
MAX_SEGMENTS = 2048


class Number(click.FloatRange):
    """A FloatRange that also refuses NaN, which passes every comparison of a plain FloatRange."""

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if math.isnan(rv):
            self.fail(f"{value} is not in the range {self._describe_range()}.", param, ctx)
        return rv


@cli.command("resample", epilog=MATHS + "\n" + EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--weights", default="uniform", show_default=True, metavar="MODE",
              help="uniform | softdedup | softdedup:dup_count | column:NAME | dsir | expr:EXPR")
@click.option("--power", type=float, default=None, help="Exponent of the softdedup weights [default: 1].")
@click.option("--segments", type=click.IntRange(1, MAX_SEGMENTS), default=100, show_default=True,
              help=f"Quantile segments of commonness (softdedup); at most {MAX_SEGMENTS}, the resolution of the "
                   "quantile summaries the boundaries come from.")
@click.option("--floor-quantile", type=Number(0, 1, max_open=True), default=0.01, show_default=True,
              help="Cap the weight of documents less common than this quantile at its weight (0: no cap).")
@click.option("--by", default=None, metavar="COLUMN", help="The domain column the mixture refers to.")
@click.option("--mixture", default=None, metavar="FILE", help="Domain weights: TOML (domain = weight) or DoReMi JSON.")
@click.option("--temperature", type=Number(min=0, min_open=True), default=None, metavar="T",
              help="Domain shares proportional to tokens^(1/T) (T = 1: natural shares, inf: equal shares).")
@click.option("--tokens", type=Number(0, math.inf, min_open=True, max_open=True), default=None, metavar="N",
              help="Budget in tokens (n_tokens, else characters).")
@click.option("--rows", type=click.IntRange(1, MAX_DRAWS), default=None, metavar="N", help="Budget in documents drawn.")
@click.option("--fraction", type=Number(0, math.inf, min_open=True, max_open=True), default=None, metavar="F",
              help="Budget as a fraction of the input's tokens (may exceed 1: repetition).")
@click.option("--max-epochs", type=Number(min=0, min_open=True), default=4.0, show_default=True,
              help="Warn when a domain is repeated more (Muennighoff et al. 2023: ~4 epochs cost little).")
@click.option("--hard-max-epochs", type=Number(min=0, min_open=True), default=16.0, show_default=True,
              help="Refuse a budget that repeats a domain more (inf: no limit).")
@click.option("--replacement/--no-replacement", default=True, show_default=True,
              help="Draw with replacement (multinomial) or without (Gumbel top-k).")
@click.option("--soft-cap", type=Number(min=0), default=None, metavar="LAMBDA",
              help="FLYT soft-cap sampling: each pick lowers a document's logit by LAMBDA.")
@click.option("--counts", "mode", flag_value="counts", default=True, help="One row per document, with sample_count (default).")
@click.option("--materialize", "mode", flag_value="materialize", help="One row per draw, with epoch and repeat_index.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of every draw: an integer >= 0, of any size.")
@click.option("--rejects", default=None, metavar="DIR", help="With --materialize: write the rows never drawn here.")
@run_options
@output_options
def resample(dataset, out, weights, power, segments, floor_quantile, by, mixture, temperature, tokens, rows, fraction,
             max_epochs, hard_max_epochs, replacement, soft_cap, mode, seed, rejects, workers, task_slice, overwrite,
             keep_work, progress, compression, quiet, as_json):
    """Draw a sample of IN to a budget, each document in proportion to its weight.

    Two passes: the first sums the weights (per shard, per domain), the second draws each
    shard's exact share with a seed of its own, so the output is the same for any -j and
    --task I/N. The manifest records the mixture asked for and realised, epochs, tokens per
    commonness segment and the largest repetition.

    \b
    Examples:
      curate resample scored/ sampled/ --weights softdedup --tokens 1e9
      curate resample deduped/ sampled/ --weights softdedup:dup_count --fraction 1.0 --materialize
      curate resample raw/ mixed/ --by domain --mixture mixture.toml --tokens 5e8
      curate resample raw/ mixed/ --by domain --temperature 2 --rows 100000 --no-replacement
      curate resample scored/ picked/ --weights dsir --fraction 0.1 --no-replacement  # after score --dsir-target
    """
    from curate.io.dataset import open_dataset
    from curate.resample.plan import load_mixture
    from curate.run.executor import execute
    from curate.stages.base import input_locations
    from curate.stages.resample import Resample, ResampleParams

    log.set_quiet(quiet)
    given = [(n, v) for n, v in (("tokens", tokens), ("rows", rows), ("fraction", fraction)) if v is not None]
    if len(given) != 1:
        raise click.UsageError("give exactly one budget: --tokens N, --rows N or --fraction F")
    if (mixture or temperature is not None) and not by:
        raise click.UsageError("--mixture and --temperature share the budget between domains: add --by COLUMN")
    if mixture and temperature is not None:
        raise click.UsageError("--mixture and --temperature are two ways to set the domain shares: choose one")
    if soft_cap == math.inf:  # a second pick would cost e^-inf: no document is ever drawn twice
        raise click.UsageError("--soft-cap inf never draws a document twice: that is sampling without replacement, "
                               "use --no-replacement (the Gumbel top-k)")
    if soft_cap is not None and not replacement:
        raise click.UsageError("--soft-cap draws with replacement (a soft limit on repeats): drop --no-replacement")
    if rejects and mode != "materialize":
        raise click.UsageError("--rejects keeps the rows never drawn, which only --materialize leaves out")
    if hard_max_epochs < max_epochs:
        raise click.UsageError(f"--hard-max-epochs {hard_max_epochs:g} is below --max-epochs {max_epochs:g}")
    mix = load_mixture(mixture) if mixture else None
    if power is None:  # 1 for both signals: why, README: Resample
        from curate.resample.weights import POWER

        power = 1.0 if weights.strip() == "softdedup:dup_count" else POWER
    params = ResampleParams(weights=weights, power=power, segments=segments, floor_quantile=floor_quantile, by=by,
                            mixture=tuple(mix.items()) if mix else None, temperature=temperature,
                            budget_kind=given[0][0], budget=float(given[0][1]), max_epochs=max_epochs,
                            hard_max_epochs=hard_max_epochs, replacement=replacement, soft_cap=soft_cap, output=mode)
    ds = open_dataset(dataset)
    stage = Resample(ds, params, seed)
    summary = execute(stage, out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression,
                                                   rejects, quiet), input_locations(ds))
    if summary.complete and not summary.already_complete:
        _log_summary(out)
    _finish(summary, as_json)


def _log_summary(out: str) -> None:
    from curate.io.location import locate
    from curate.io.manifest import read_manifest

    m = (read_manifest(locate(out)) or {}).get("resample")
    if not m:
        return
    log.info(f"resample: {m['draws']:,} draws, {m['units_drawn']:,.0f} {m['unit'] if m['unit'] != 'rows' else 'tokens'}, "
             f"largest repetition {m['max_repetition']}")
    for d, x in m["domains"].items():
        if len(m["domains"]) > 1:
            log.info(f"resample:   {d}: asked {x['requested_share']:.4f}, got {x['realised_share']:.4f}, "
                     f"{x['epochs']:.2f} epochs")
