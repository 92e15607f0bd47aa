"""Commands built on language models: `curate ngram train` and `curate score`."""

from __future__ import annotations

import json

import click

from curate import log
from curate.cli import EXIT_CODES, CurateGroup, _finish, _no_json_on_stdout, cli
from curate.options import make_run_options, output_options, run_options

TOKENIZER_HELP = ("Tokeniser: 'ccnet' (built in: CCNet normalisation, words and punctuation), 'spm:MODEL' (SentencePiece) "
                  "or 'hf:TOKENIZER.json' (Hugging Face tokenizers).")


@cli.group(cls=CurateGroup, epilog=EXIT_CODES)
def ngram():
    """N-gram language models (KenLM): train one on a dataset, for `curate score`.

    \b
    Examples:
      curate ngram train clean/ models/web.4gram.bin --order 4
      curate ngram train wiki/ models/wiki.5gram.bin --order 5 --prune "0 0 1" --memory 8G
    """


@ngram.command("train", epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("model", metavar="MODEL")
@click.option("--order", type=click.IntRange(2, 6), default=4, show_default=True,
              help="N-gram order (SoftDedup: 4; CCNet: 5). 6 at most: KenLM is built with KENLM_MAX_ORDER=6.")
@click.option("--sample", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Train on this fraction of the documents, chosen by a seeded hash of their id.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True, help="Seed of --sample.")
@click.option("--memory", default=None, envvar="CURATE_MEMORY", show_envvar=True,
              help="Sorting memory for lmplz: a size (4G) or a share of RAM (50%) [default: 50%].")
@click.option("--prune", default=None, help="Drop n-grams seen at most this often, per order, e.g. '0 0 1' (lmplz --prune).")
@click.option("--tokenizer", default="ccnet", show_default=True, help=TOKENIZER_HELP)
@click.option("--overwrite", is_flag=True, help="Replace MODEL if it exists.")
@click.option("--progress", type=click.Choice(["auto", "bar", "plain", "none"]), default="auto", show_default=True,
              envvar="CURATE_PROGRESS", help="Progress display: a bar on a terminal, plain lines in cron.")
@output_options
def ngram_train(dataset, model, order, sample, seed, memory, prune, tokenizer, overwrite, progress, quiet, as_json):
    """Train a Kneser-Ney n-gram model on IN with KenLM (lmplz, then build_binary).

    The dataset's text is tokenised (one sentence per line of a document) and streamed into lmplz:
    no copy of the corpus is written. MODEL is a KenLM binary model; MODEL.json beside it records
    the corpus, order, tokeniser and n-gram counts. lmplz and build_binary are looked up in
    CURATE_KENLM_BIN, then beside this Python, then on the PATH.

    \b
    Examples:
      curate ngram train clean/ models/web.4gram.bin
      curate ngram train 'crawl/part-00*.parquet' m.bin --order 5 --sample 0.1 --memory 16G
      curate ngram train raw/ m.bin --tokenizer spm:en.sp.model --prune "0 1 1 2"
    """
    from curate.stages.ngram_train import TrainParams, describe, lmplz_memory, parse_prune, train

    log.set_quiet(quiet)
    params = TrainParams(order=order, sample=sample, seed=seed, memory=lmplz_memory(memory),
                         prune=parse_prune(prune, order), tokenizer=tokenizer)
    manifest = train(dataset, model, params, "none" if quiet else progress, overwrite)
    log.info(f"ngram train: wrote {model}: {describe(manifest)}")
    if as_json:
        click.echo(json.dumps({"model": model, **manifest}, sort_keys=True))


@cli.command(epilog=EXIT_CODES)
@click.argument("dataset", metavar="IN")
@click.argument("out", metavar="OUT")
@click.option("--kenlm", "kenlm_model", default=None, metavar="MODEL",
              help="Add ppl (CCNet perplexity: each line a sentence) and n_tokens.")
@click.option("--commonness", "common_model", default=None, metavar="MODEL",
              help="Add commonness (SoftDedup: geometric-mean token probability of the document) and logprob.")
@click.option("--tokenizer", default=None, help=TOKENIZER_HELP + " [default: the one each model was trained with]")
@click.option("--signals", default=None, metavar="SETS",
              help="Add heuristic quality signals, comma-separated sets: gopher, gopher-repetition, c4, fineweb "
                   "(one column per quantity those rules threshold; presets in configs/).")
@click.option("--fasttext", "fasttext_models", multiple=True, metavar="MODEL",
              help="Add <name>_label and <name>_score (top label, its probability) from a fastText classifier "
                   "(lid.176.bin, a quality classifier). Repeatable.")
@click.option("--fasttext-name", "fasttext_names", multiple=True, metavar="NAME",
              help="Column prefix of each --fasttext model, paired in order [default: the model file's stem, "
                   "lid.176.bin -> lid_176].")
@click.option("--dsir-target", default=None, metavar="TARGET",
              help="Add dsir_logratio, DSIR's log importance weight toward TARGET (a dataset: Parquet dir/glob or "
                   ".jsonl[.gz] files), after a first pass that fits IN's hashed n-gram distribution.")
@click.option("--dsir-buckets", type=int, default=None, metavar="N",
              help="Hash buckets of the DSIR features [default: 10000, data-selection's].")
@click.option("--dsir-target-field", default="text", show_default=True, metavar="FIELD",
              help="The target's text column (or JSON field).")
@click.option("--dsir-save", default=None, metavar="FILE", help="Write the fitted DSIR estimator to FILE.")
@click.option("--dsir-load", default=None, metavar="FILE",
              help="Score with a DSIR estimator written by --dsir-save (no fitting pass; IN may be '-').")
@run_options
@output_options
def score(dataset, out, kenlm_model, common_model, tokenizer, signals, fasttext_models, fasttext_names, dsir_target,
          dsir_buckets, dsir_target_field, dsir_save, dsir_load, workers, task_slice, overwrite, keep_work, progress,
          compression, quiet, as_json):
    """Add score columns to every row: numbers, never verdicts (thresholds live in `curate filter`).

    Several scorers share one read of the data. Models load once per worker process (binary
    models are memory-mapped, so workers share them). A document without any token gets null
    scores and n_tokens 0.

    \b
    Examples:
      curate score clean/ scored/ --kenlm models/wiki.5gram.bin
      curate score clean/ scored/ --commonness models/self.4gram.bin -j 8
      curate score - - --kenlm m.bin < in.arrow | curate export - out.jsonl
      curate score clean/ scored/ --signals gopher,gopher-repetition,c4,fineweb
      curate score clean/ scored/ --fasttext lid.176.bin --fasttext-name lang --fasttext edu.bin --fasttext-name edu
      curate score crawl/ scored/ --dsir-target wiki.jsonl.gz --dsir-save crawl-wiki.dsir
      curate score more/ scored2/ --dsir-load crawl-wiki.dsir
    """
    from curate.io.dataset import open_dataset
    from curate.run.executor import execute
    from curate.stages.base import input_locations
    from curate.stages.score import Score, ScoreParams

    log.set_quiet(quiet)
    _no_json_on_stdout(out, as_json)
    sets = ()
    if signals is not None:
        from curate.score.signals import parse_sets

        sets = parse_sets(signals)
    ds = open_dataset(dataset)
    ft, dsir = _fasttext_and_dsir(fasttext_models, fasttext_names, dsir_target, dsir_buckets, dsir_target_field,
                                  dsir_save, dsir_load)
    stage = Score(ds, ScoreParams(kenlm=kenlm_model, commonness=common_model, tokenizer=tokenizer, signals=sets,
                                  fasttext=ft, dsir=dsir))
    summary = execute(stage, out, make_run_options(workers, task_slice, overwrite, keep_work, progress, compression,
                                                   None, quiet), input_locations(ds))
    _finish(summary, as_json)


def _fasttext_and_dsir(models, names, target, buckets, target_field, save, load):
    from curate.errors import UsageError
    from curate.score.dsir import DSIRParams
    from curate.score.fasttext_scorer import pair_names

    if names and not models:
        raise UsageError("--fasttext-name without --fasttext", hint="give the model: --fasttext MODEL --fasttext-name NAME")
    ft = tuple(pair_names(tuple(models), tuple(names))) if models else ()
    if target is None and load is None:
        if buckets is not None or save is not None:
            raise UsageError("--dsir-buckets and --dsir-save need --dsir-target TARGET")
        return ft, None
    return ft, DSIRParams(target=target, buckets=buckets, load=load, save=save, target_field=target_field)
