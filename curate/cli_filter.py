"""`curate filter`: keep rows by rules written in a small, safe expression language."""

from __future__ import annotations

import json

import click

from curate import log
from curate.cli import EXIT_CODES, _finish, _no_json_on_stdout, cli
from curate.options import make_run_options, output_options, run_options

LANGUAGE = """\b
The language (never eval'd: nothing else parses):
  columns       ppl, n_tokens, `a column with spaces`
  literals      3, 0.5, 1e-3, 'text' or "text", true, false
  operators     + - * /   == != < <= > >=   and or not   (SQL's = and <> work too)
  sets, nulls   domain in ['a.com', 'b.org'], lang not in [...], ppl is null, ppl is not null
  functions     len(text) (characters), lower(s), upper(s), contains(s, 'x'),
                startswith(s, 'x'), endswith(s, 'x'), regex(s, 'RE2 pattern') (a match
                anywhere), abs(x), coalesce(x, y, ...), quantile(x, q)
\b
Nulls (SQL): a comparison, arithmetic or function of a null is null; `and`/`or` are
Kleene (false and null = false, true or null = true). A row is kept only when every rule
is TRUE: a rule that is null on a row (a missing score) removes it, as SQL's WHERE does.
To keep such rows say so: --where 'ppl < 500 or ppl is null'. x / 0 is null; NaN is not
null (it is a value: comparisons follow IEEE). Arithmetic is in float64 (an integer above
2**53 rounds to the nearest float); integers compare with integers exactly, also in `in [...]`.
\b
quantile(x, q): the smallest value v with at least ceil(q*N) of the N values of x <= v
(nulls and NaN left out), over the whole input; x may be an expression such as len(text).
A first pass summarises each shard with 2,048 values; the value used is a true value of x whose
rank is in [ceil(q*N), ceil(q*N) + N/2048): exact when no shard has more than 2,048
values, otherwise off by less than 0.05% of N in rank. The same for any -j or --task.
\b
Rules: --preset rules first (in file order), then --rule, then --where; the first rule a
removed row fails is its reject_rule. A --where is named by its own text.
"""


@cli.command("filter", epilog=LANGUAGE + "\n" + EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="[OUT]", required=False)
@click.option("--where", "where", multiple=True, metavar="EXPR",
              help="A condition every kept row meets (repeatable: all must hold).")
@click.option("--rule", "rule", multiple=True, metavar="NAME=EXPR",
              help="A named condition (repeatable); rejects and reports use NAME.")
@click.option("--preset", "preset", multiple=True, metavar="FILE.toml",
              help='Named rules from a TOML file: [rules] NAME = "EXPR" (repeatable).')
@click.option("--rejects", default=None, metavar="DIR",
              help="Write every removed row here, with reject_rule (the first rule it failed) and reject_rules (all).")
@click.option("--dry-run", is_flag=True,
              help="Write nothing; print per rule the documents and tokens it removes, those only it removes, "
                   "rows where it is null, and pairwise overlaps (--json: the same as data).")
@click.option("--group-by", default=None, metavar="COLUMN", help="With --dry-run: the same counts per value of COLUMN.")
@click.option("--explain", type=click.IntRange(min=1), default=None, metavar="N",
              help="Write nothing; show N removed rows per rule with the values that failed it (with --dry-run: "
                   "after the tables).")
@run_options
@output_options
def filter_(dataset, out, where, rule, preset, rejects, dry_run, group_by, explain, workers, task_slice, overwrite,
            keep_work, progress, compression, quiet, as_json):
    """Keep the rows for which every rule is true; reject the others with the rule that failed.

    Rows in = kept + rejected, always. OUT is a directory (or '-' for an Arrow stream when no
    rule uses quantile()); it is not needed with --dry-run or --explain, which write nothing.
    Tokens in reports are the n_tokens column when there is one (curate score --kenlm adds
    it), else characters of text.

    \b
    Examples:
      curate filter scored/ kept/ --where 'len(text) >= 200' --where 'ppl < quantile(ppl, 0.7)'
      curate filter scored/ --preset configs/example.toml --dry-run --group-by domain
      curate filter scored/ --rule short='len(text) < 100' --explain 5
      curate filter scored/ kept/ --preset configs/example.toml --rejects removed/ -j 8
      curate filter raw/ - --where "domain not in ['spam.com']" | curate export - - | head
    """
    from curate.filter.rules import gather
    from curate.io.dataset import open_dataset
    from curate.run.executor import default_workers

    log.set_quiet(quiet)
    rule_list = gather(preset, rule, where)
    if group_by and not dry_run:
        raise click.UsageError("--group-by breaks down a --dry-run report: add --dry-run")
    if dry_run or explain:
        from curate.filter.report import render
        from curate.stages.filter import DryRun
        from curate.stages.filter import dry_run as run_dry

        if rejects:
            raise click.UsageError("--rejects writes removed rows; --dry-run and --explain write nothing")
        ds = open_dataset(dataset)
        if group_by and ds.shards and not ds.stdin:
            from curate.filter.report import check_group_by
            from curate.io.dataset import reference_schema

            check_group_by(reference_schema(ds), group_by)
        spec = DryRun(tuple(rule_list), group_by, explain or 0)
        rep = run_dry(ds, spec, workers or default_workers())
        if as_json:
            click.echo(json.dumps(rep, sort_keys=True, default=str))
        else:
            render(rep, summary=dry_run)
        return
    if out is None:
        raise click.UsageError("missing OUT: give an output directory (or '-'), or use --dry-run / --explain")
    _no_json_on_stdout(out, as_json)
    from curate.run.executor import execute
    from curate.stages.base import input_locations
    from curate.stages.filter import Filter, log_summary

    ds = open_dataset(dataset)
    stage = Filter(ds, rule_list)
    summary = execute(stage, out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression,
                                                   rejects, quiet), input_locations(ds))
    log_summary(summary, rule_list)
    _finish(summary, as_json)
