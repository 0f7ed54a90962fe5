"""`alexnet-export classify`: a folder of images (or a manifest) in, a table of top-k labels out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from alexnet_export.cli.options import (TerminalReporter, checkpoint_labels, checkpoint_labels_option, duration,
                                        lists_model_files, say, trusted_key_option)
from alexnet_export.runtimes.table import backends_taking


@click.command("classify")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("inputs", nargs=-1, required=True, metavar="INPUT...")
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Results: NAME.jsonl is that one JSON Lines file (a row per image, appended as the run goes); "
                   "NAME.parquet is a FOLDER of Parquet parts, which pyarrow, pandas, Spark and Ray read as one "
                   "table (needs pyarrow, the `batch` extra; --ray writes Parquet). Run again to finish an "
                   "interrupted run.")
@click.option("--top-k", type=int, default=5, show_default=True, help="Labels (and probabilities) per image.")
@click.option("--batch-size", type=int, default=16, show_default=True, help="Images per model run.")
@click.option("--decode-threads", type=int, help="Threads reading and resizing images (default: CPUs, at most 4).")
@click.option("--threads", type=int, help=f"Inference threads, for {backends_taking('threads')}.")
@click.option("--rows-per-part", type=int, default=1000, show_default=True,
              help="Results per part file: the most an interruption can lose.")
@click.option("--path-column", default="path", show_default=True, help="The column of a CSV or Parquet manifest that holds the paths.")
@click.option("--ray", "ray", is_flag=False, flag_value="local", metavar="[ADDRESS]",
              help="Run the job on Ray (Ray Data, the `ray` extra): alone, on a Ray started on this machine for the "
                   "job; `auto` joins the cluster RAY_ADDRESS names (or the one `ray start` started here); HOST:PORT "
                   "joins that head. Writes Parquet.")
@click.option("--workers", type=int, help="--ray: actors, each opening the model once.  [default: 1]")
@click.option("--cpus-per-worker", type=int, help="--ray: CPUs per actor (and its inference threads).  [default: 1]")
@click.option("--gpus-per-worker", type=float,
              help="--ray: GPUs per actor, for CUDA runtimes (a fraction shares one).  [default: 0]")
@click.option("--ship-model/--no-ship-model", default=None,
              help="--ray: send the model through Ray's object store / only by path. Default: by path when every "
                   "node reads the file there, else through the object store.")
@checkpoint_labels_option
@click.option("--allow-model-change", is_flag=True,
              help="Add to an output that another model file started (each row records its model's sha256); "
                   "without it such an output is refused.")
@trusted_key_option
@lists_model_files
def classify_command(model, inputs, output, top_k, batch_size, decode_threads, threads, rows_per_part, path_column,
                     ray, workers, cpus_per_worker, gpus_per_worker, ship_model, labels_file, allow_model_change,
                     trusted_key):
    """Classify every image INPUT names with MODEL into a JSON Lines file or a Parquet table: per image
    its path, top-k labels and probabilities, the model file's sha256 and precision, or the error
    that kept it from being classified (the job goes on).

    MODEL is any file a runtime loads: MODEL_FILES. INPUT is an image file, a
    folder (searched recursively), a glob pattern (quoted, so the shell leaves it: 'photos/**/*.jpg'),
    or a manifest: a .txt of paths (one a line) or a .csv/.parquet with a path column; relative
    paths in a manifest are relative to its folder.

    -o results.jsonl writes that one file. -o results.parquet makes a FOLDER named results.parquet
    of part files (part-00000.parquet, ...): read it whole with pyarrow.parquet.read_table or
    pandas.read_parquet, or as results.parquet/*.parquet with DuckDB and polars.

    Images are decoded by a pool of threads while the model runs; results are written every
    --rows-per-part images (appended whole to the .jsonl, or as a part file renamed into place).
    After a crash or Ctrl-C, run the same command again: it skips the images the output holds and
    finishes; nothing is written twice. docs/batch.md has the layout and the Python API.

    With --ray the same job runs on Ray Data: --workers actors (each with --cpus-per-worker CPUs,
    --gpus-per-worker GPUs) decode and classify batches, Ray's Parquet writer writes the results
    into a hidden folder of the output, and each finished file is renamed into place as the next
    part, so a Ray run and a local run resume each other's output. Alone, --ray starts a Ray on
    this machine for the job (a few seconds); `--ray auto` or `--ray HOST:PORT` joins a running
    cluster (`ray start --head` on the head, `ray start --address HEAD:6379` on the others; the
    nodes need alexnet-export installed). Every node must read the images by path and see the
    output folder (the same machine, or a shared file system). The model reaches the workers by
    path when every node reads the same file there, otherwise its bytes travel through Ray's
    object store, written once per node to its temporary folder (--ship-model forces that).

    \b
    Examples:
      alexnet-export classify alexnet.onnx photos/ -o results.parquet
      alexnet-export classify alexnet.int8-cpu.onnx 'shoot-*/**/*.jpg' -o results.jsonl --top-k 1
      alexnet-export classify checkpoint.pt photos/ -o results.jsonl --labels classes.txt
      alexnet-export classify alexnet.onnx manifest.csv --path-column file -o results.parquet
      alexnet-export classify alexnet.onnx photos/ -o results.parquet --ray --workers 2
      alexnet-export classify /shared/alexnet.onnx /shared/manifest.parquet -o /shared/results.parquet --ray auto --workers 16
      alexnet-export classify alexnet.onnx photos/ -o results.parquet --ray 10.0.0.5:6379 --gpus-per-worker 0.5
      python -c "import pyarrow.parquet as pq; print(pq.read_table('results.parquet').to_pandas())"

    """
    from alexnet_export.batch.local import classify_collection
    from alexnet_export.batch.formats import output_format
    from alexnet_export.batch.output import read_existing

    options = {} if threads is None else {"threads": threads}
    labels = checkpoint_labels(model, labels_file)
    if labels:  # by absolute path: a Ray worker reads it in its own folder (like the model, by path)
        options["labels"] = labels["labels"].absolute() if ray is not None else labels["labels"]
    common = dict(top_k=top_k, batch_size=batch_size, rows_per_part=rows_per_part, path_column=path_column,
                  allow_model_change=allow_model_change, trusted_key=trusted_key, **options)
    on_ray = {"workers": workers, "cpus_per_worker": cpus_per_worker, "gpus_per_worker": gpus_per_worker,
              "ship_model": ship_model}
    given = [f"--{name.replace('_', '-')}" for name, value in on_ray.items() if value is not None]
    if ray is None and given:
        raise click.UsageError(f"{', '.join(given)} apply to a Ray job; add --ray")
    if ray is not None and decode_threads is not None:
        raise click.UsageError("--decode-threads applies to the local job; on Ray each worker decodes its batches")
    reporter = TerminalReporter()
    try:
        if ray is None:
            result = classify_collection(model, inputs, output, decode_threads=decode_threads, on_event=reporter,
                                         **common)
        else:
            from alexnet_export.batch.ray_job import classify_on_ray

            chosen = {name: value for name, value in on_ray.items() if value is not None}
            result = classify_on_ray(model, inputs, output, address=ray, on_event=reporter, **chosen, **common)
    except KeyboardInterrupt:
        kept = len(read_existing(output).paths) if output.exists() else 0
        whole = "lines" if output_format(output).one_file else "parts"
        newline = "\n" if sys.stderr.isatty() else ""  # past a progress line drawn in place
        say(f"{newline}Interrupted; {output} holds {kept} results, in whole {whole}. Run the same command again to "
            "finish.")
        sys.exit(130)
    click.echo(f"{result.output}: {result.classified} classified, {result.errors} errors, {result.skipped} skipped "
               f"(already there), in {duration(result.seconds)}, {result.images_per_second:.1f} images/s "
               f"({result.precision}, model sha256 {result.model_sha256[:12]})")
    if result.first_error:
        say(f"first error: {result.first_error}")
