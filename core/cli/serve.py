"""`alexnet-export triton` and `alexnet-export serve`."""

from __future__ import annotations

import re
from pathlib import Path

import click

from alexnet_export.cli.options import (batch_sizes_option, checkpoint_labels, checkpoint_labels_option,
                                        lists_model_files, say, trusted_key_option)


@click.command("triton")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), required=True, help="Model repository folder.")
@click.option("--onnx", "onnx_files", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="An .onnx to serve with Triton's ONNX Runtime backend (repeatable).")
@click.option("--engine", "engines", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A TensorRT .engine (with its sidecar) to serve as a tensorrt_plan (repeatable).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True, help="Model instances per device kind.")
@click.option("--kind", type=click.Choice(["cpu", "gpu"]), default="cpu", show_default=True)
@click.option("--preferred-batch", default="8,16", show_default=True, callback=lambda ctx, param, value: batch_sizes_option(value), help="Dynamic batching's preferred sizes.")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=100, show_default=True)
@click.option("--onnx-tensorrt", is_flag=True, help="With --kind gpu: let the ONNX model use Triton's TensorRT accelerator.")
@click.option("--force", is_flag=True, help="Replace models that already exist in the repository.")
@click.option("--kserve", "kserve_output", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a KServe InferenceService that runs the whole repository with Triton (YAML; JSON for "
                   "a .json name). Needs --storage-uri.")
@click.option("--storage-uri", help="Where the cluster fetches the repository folder from: s3://, gs://, pvc://, "
                                    "https://, hdfs://, webhdfs://, hf:// or oci://.")
@click.option("--name", default="alexnet", show_default=True, help="The InferenceService's name.")
@click.option("--namespace", help="The InferenceService's namespace (default: kubectl's).")
@click.option("--replicas", type=int, default=1, show_default=True, help="Replicas at least (minReplicas).")
@click.option("--max-replicas", type=int, help="Replicas at most, for KServe's autoscaler (default: --replicas).")
@click.option("--cpu", default="1", show_default=True, help="CPU per replica, requested and limit (Kubernetes quantity).")
@click.option("--memory", default="2Gi", show_default=True, help="Memory per replica, requested and limit.")
@click.option("--gpus", type=int, help="GPUs per replica (default: 1 when a model runs on the GPU, else 0).")
@click.option("--runtime-version", help="Triton image tag for KServe's runtime, e.g. 25.01-py3 (default: the "
                                        "runtime's). An engine needs the TensorRT release it was built with.")
def triton_command(repo, onnx_files, engines, max_batch, instances, kind, preferred_batch, max_queue_delay_us,
                   onnx_tensorrt, force, kserve_output, storage_uri, name, namespace, replicas, max_replicas, cpu,
                   memory, gpus, runtime_version):
    """Write a Triton Inference Server model repository: one model per file, each with a full
    config.pbtxt (batching, instance groups, labels, model_warmup at batch 1, the preferred sizes
    and --max-batch) and labels.txt. A file exported with --input-format uint8 is declared
    TYPE_UINT8 FORMAT_NHWC [224, 224, 3], so Triton clients send pixels.

    With --kserve it also writes the manifest that runs the repository on Kubernetes: a KServe
    InferenceService with the Triton runtime (kserve-tritonserver, protocol v2), the repository
    fetched from --storage-uri (copy the folder there), replicas and resources; a GPU per replica
    when a model runs on one. --kserve with no --onnx or --engine writes it for the repository as it is.

    \b
    Examples:
      alexnet-export triton --repo models/ --onnx alexnet.onnx --onnx alexnet.int8-cpu.onnx
      alexnet-export triton --repo models/ --engine alexnet.engine --kind gpu --max-batch 32
      alexnet-export triton --repo models/ --onnx alexnet.onnx --kserve alexnet-isvc.yaml \\
          --storage-uri s3://my-bucket/models --replicas 2 --max-replicas 8 --cpu 4 --memory 4Gi
      aws s3 sync models/ s3://my-bucket/models && kubectl apply -f alexnet-isvc.yaml
    """
    from alexnet_export.atomic import check_output_path
    from alexnet_export.serving.kserve import KServeOptions, write_inference_service
    from alexnet_export.serving.triton_repo import ServingOptions, add_engine, add_onnx

    if storage_uri and not kserve_output:
        raise click.UsageError("--storage-uri is for the --kserve manifest; add --kserve FILE")
    if not onnx_files and not engines and not kserve_output:
        raise click.UsageError("give at least one --onnx or --engine (or --kserve for the repository as it is)")
    if kserve_output and not storage_uri:
        raise click.UsageError("--kserve needs --storage-uri: where the cluster fetches the repository from")
    options = ServingOptions(max_batch, instances, kind, preferred_batch, max_queue_delay_us, onnx_tensorrt)
    if kserve_output:  # its arguments are checked before any model is written
        kserve = KServeOptions(storage_uri, name=name, namespace=namespace, replicas=replicas, max_replicas=max_replicas,
                               cpu=cpu, memory=memory, gpus=gpus, runtime_version=runtime_version)
        check_output_path(kserve_output, argument="kserve_output")
    entries = [add_onnx(repo, path, options, force=force) for path in onnx_files]
    entries += [add_engine(repo, path, options, force=force) for path in engines]
    for entry in entries:
        say(f"wrote {entry.folder} ({entry.platform})")
    if entries:
        click.echo(f"repository {repo}: {', '.join(e.name for e in entries)}")
    if kserve_output:
        written = write_inference_service(repo, kserve_output, kserve)
        gpus_text = f", {written.gpus} GPU(s) per replica" if written.gpus else ", CPU only"
        click.echo(f"InferenceService {written.name}: {written.path} serves {', '.join(written.models)}{gpus_text}")


@click.command("serve")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback is reachable from other machines.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="0 picks a free port.")
@click.option("--name", default="alexnet", show_default=True, help="The model's name in URLs (/v2/models/NAME/...).")
@click.option("--max-batch", type=click.IntRange(min=1), default=32, show_default=True,
              help="Most images in one model run, and in one request (as Triton's max_batch_size). "
                   "A JSON image is about 3 MB of text: big JSON batches need a larger --max-body-mb "
                   "(binary tensors are 0.6 MB an image).")
@click.option("--max-queue-delay-ms", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="How long a request may wait for others to share its model run.")
@click.option("--no-batching", is_flag=True, help="Run every request on its own (for comparison).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model runs at once, sharing the one loaded model; ONNX Runtime's threads are split between them.")
@click.option("--max-body-mb", type=click.FloatRange(min=0, min_open=True), default=64, show_default=True,
              help="Largest request body (413 above it).")
@click.option("--max-connections", type=click.IntRange(min=1), default=64, show_default=True,
              help="Open connections at most (503 past it): with --max-body-mb, bounds the memory clients can tie up.")
@click.option("--no-warmup", is_flag=True,
              help="Answer ready at once, without first running the model at batch 1 and --max-batch "
                   "(for comparison: the first requests then pay for the first runs).")
@click.option("--access-log", is_flag=True, help="Log every request.")
@checkpoint_labels_option
@trusted_key_option
@lists_model_files
def serve_command(model, host, port, name, max_batch, max_queue_delay_ms, no_batching, workers, max_body_mb,
                  max_connections, no_warmup, access_log, labels_file, trusted_key):
    """Serve MODEL over HTTP with the Open Inference Protocol (KServe v2, as Triton speaks it,
    binary tensors included), with dynamic batching. MODEL is MODEL_FILES.

    \b
    Endpoints: /v2/health/live, /v2/health/ready, /v2, /v2/models/NAME, /v2/models/NAME/ready,
    /v2/models/NAME/infer (tensors "images" FP32 [N,3,224,224] -> "logits" FP32 [N,classes]),
    /v2/models/NAME/stats, /v2/models/NAME/classify (an image file as the body, ?top_k=5), and
    /metrics (Prometheus text: requests and failures by endpoint, queue and compute times, batch
    sizes, requests in flight; Triton's nv_inference_* names). A file exported with --input-format
    uint8 takes "images" UINT8 [N,224,224,3]: raw RGB pixels after resize and crop.
    /v2/health/ready answers 200 once the model has run at batch 1 and --max-batch.

    \b
    Examples:
      alexnet-export serve alexnet.onnx
      alexnet-export serve alexnet.int8-cpu.onnx --port 8080 --max-batch 16 --max-queue-delay-ms 10
      alexnet-export serve alexnet.onnx --trusted-key public.pem      # serves it only if its signature verifies
      alexnet-export serve checkpoint.pt --labels classes.txt        # a checkpoint, eagerly, with its class names
      curl -H "Content-Type: image/jpeg" --data-binary @cat.jpg "localhost:8000/v2/models/alexnet/classify?top_k=3"
    """
    from alexnet_export.serving.server import ServeSettings, serve

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise click.BadParameter(f"{name!r} must be letters, digits, '_', '-' or '.'", param_hint="--name")
    settings = ServeSettings(name=name, max_batch=max_batch, max_queue_delay_ms=max_queue_delay_ms,
                             batching=not no_batching, workers=workers, max_body_bytes=int(max_body_mb * 2**20),
                             max_connections=max_connections, warmup=not no_warmup)
    serve(model, settings, host=host, port=port, access_log=access_log, say=say, trusted_key=trusted_key,
          **checkpoint_labels(model, labels_file))
