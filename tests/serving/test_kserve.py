"""KServe InferenceServices for Triton repositories, read back into the `kserve` package's own model classes."""

import json
import re

import pytest

from alexnet_export.errors import ArgumentError
from alexnet_export.serving.kserve import KServeOptions, to_yaml, write_inference_service
from alexnet_export.serving.triton_repo import RepositoryError, ServingOptions, add_engine, add_onnx

STORAGE = "s3://models-bucket/alexnet/repo"


@pytest.fixture(scope="module")
def cpu_repo(tmp_path_factory, small_onnx):
    """A repository of one ONNX model ("small") on CPU instances."""
    repo = tmp_path_factory.mktemp("cpu") / "repo"
    add_onnx(repo, small_onnx, ServingOptions())
    return repo


@pytest.fixture(scope="module")
def gpu_repo(tmp_path_factory, small_onnx, tensorrt_engine):
    """A repository of a TensorRT engine ("alexnet_trt") beside the ONNX model on GPU instances."""
    folder = tmp_path_factory.mktemp("gpu")
    engine = tensorrt_engine(folder / "alexnet.engine", [f"class {i}" for i in range(10)])
    options = ServingOptions(kind="gpu")
    add_engine(folder / "repo", engine, options)
    add_onnx(folder / "repo", small_onnx, options)
    return folder / "repo"


@pytest.fixture(scope="module")
def read_service():
    """read_service(path) -> V1beta1InferenceService, refusing any key KServe's classes do not have."""
    kserve = pytest.importorskip("kserve", reason="the kserve extra (pip install '.[kserve]') reads manifests back")
    yaml = pytest.importorskip("yaml", reason="PyYAML (a kserve dependency) reads the YAML manifests")
    import kubernetes.client

    def load(data, type_name):
        """kserve's ApiClient.deserialize resolves class names in kserve.models only, which refers to
        Kubernetes' own (V1ObjectMeta, V1ResourceRequirements); and both sets of classes drop keys they
        do not know. So: walk the declared types, refuse unknown keys, build each object with its class."""
        if type_name in ("str", "int", "bool"):
            assert type(data).__name__ == type_name, f"{data!r} should be {type_name}"
            return data
        if found := re.fullmatch(r"list\[(.+)\]", type_name):
            return [load(item, found.group(1)) for item in data]
        if found := re.fullmatch(r"dict\(str, (.+)\)", type_name):
            return {key: load(item, found.group(1)) for key, item in data.items()}
        klass = getattr(kserve.models, type_name, None) or getattr(kubernetes.client, type_name)
        by_key = {key: attribute for attribute, key in klass.attribute_map.items()}
        assert set(data) <= set(by_key), f"{type_name} has no {sorted(set(data) - set(by_key))}"
        if klass.__module__.startswith("kubernetes."):  # pydantic classes: they check their types themselves
            return klass.from_dict(data)
        return klass(**{by_key[key]: load(item, klass.openapi_types[by_key[key]]) for key, item in data.items()})

    def read(path):
        text = path.read_text()
        manifest = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        service = load(manifest, "V1beta1InferenceService")
        # And back: the classes' own serialization gives the file's content (with the SDK's default
        # container name, which KServe replaces by its own).
        again = kserve.ApiClient().sanitize_for_serialization(service)
        assert again["spec"]["predictor"]["model"].pop("name") == ""
        assert again == manifest
        return service

    return read


def test_cpu_repository(tmp_path, cpu_repo, read_service):
    options = KServeOptions(STORAGE, name="alexnet-cpu", replicas=2, max_replicas=5, cpu="2", memory="3Gi")
    written = write_inference_service(cpu_repo, tmp_path / "isvc.yaml", options)
    service = read_service(written.path)
    assert (service.api_version, service.kind) == ("serving.kserve.io/v1beta1", "InferenceService")
    assert service.metadata.name == written.name == "alexnet-cpu" and service.metadata.namespace is None
    assert service.metadata.annotations == {"alexnet-export/models": "small"} and written.models == ("small",)
    predictor = service.spec.predictor
    assert (predictor.min_replicas, predictor.max_replicas) == (2, 5)
    model = predictor.model
    assert (model.model_format.name, model.runtime, model.protocol_version) == ("triton", "kserve-tritonserver", "v2")
    assert model.storage_uri == STORAGE and model.runtime_version is None
    assert model.resources.requests == model.resources.limits == {"cpu": "2", "memory": "3Gi"}
    assert written.gpus == 0


def test_gpu_repository_yaml_and_json(tmp_path, gpu_repo, read_service):
    options = KServeOptions("gs://bucket/repo", namespace="vision", runtime_version="25.01-py3")
    from_yaml = read_service(write_inference_service(gpu_repo, tmp_path / "isvc.yaml", options).path)
    written = write_inference_service(gpu_repo, tmp_path / "isvc.json", options)
    assert read_service(written.path).to_dict() == from_yaml.to_dict()
    assert written.models == ("alexnet_trt", "small") and written.gpus == 1
    assert from_yaml.metadata.namespace == "vision"
    assert from_yaml.metadata.annotations["alexnet-export/models"] == "alexnet_trt,small"
    model = from_yaml.spec.predictor.model
    assert model.runtime_version == "25.01-py3"
    # Kubernetes takes a GPU in limits only; the request follows it.
    assert model.resources.limits == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": "1"}
    assert model.resources.requests == {"cpu": "1", "memory": "2Gi"}
    two = write_inference_service(gpu_repo, tmp_path / "two.yaml", KServeOptions(STORAGE, gpus=2))
    assert read_service(two.path).spec.predictor.model.resources.limits["nvidia.com/gpu"] == "2"


def test_an_engine_needs_a_gpu_whatever_its_kind(tmp_path, tensorrt_engine, small_onnx):
    """An engine is a GPU model even in a repository whose config was edited to KIND_CPU."""
    repo = tmp_path / "repo"
    entry = add_engine(repo, tensorrt_engine(tmp_path / "alexnet.engine", ["a", "b"]), ServingOptions(kind="gpu"))
    config = entry.folder / "config.pbtxt"
    config.write_text(config.read_text().replace("KIND_GPU", "KIND_CPU"))
    assert write_inference_service(repo, tmp_path / "isvc.yaml", KServeOptions(STORAGE)).gpus == 1


@pytest.mark.parametrize("repo_name, gpus, message", [
    ("gpu_repo", 0, r"model alexnet_trt runs on a GPU .*; gpus must be at least 1"),
    ("cpu_repo", 1, r"every model of the repository runs on the CPU .*, so 1 GPU\(s\) would sit idle"),
])
def test_gpus_must_fit_the_repository(request, tmp_path, repo_name, gpus, message):
    with pytest.raises(ArgumentError, match=message) as caught:
        repo = request.getfixturevalue(repo_name)
        write_inference_service(repo, tmp_path / "isvc.yaml", KServeOptions(STORAGE, gpus=gpus))
    assert caught.value.argument == "gpus"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("options, argument, message", [
    (dict(storage_uri="http://host/repo"), "storage_uri", r"'http://host/repo' is not one KServe fetches .* from; "
                                                          r"expected s3://, gs://, pvc://, https://"),
    (dict(storage_uri="file:///models"), "storage_uri", "not one KServe fetches"),
    (dict(storage_uri="/models/repo"), "storage_uri", "not one KServe fetches"),
    (dict(storage_uri="s3://"), "storage_uri", "not one KServe fetches"),
    (dict(storage_uri="pvc://claim/my repo"), "storage_uri", "not one KServe fetches"),
    (dict(name="AlexNet"), "name", r"name 'AlexNet' is not valid: expected at most 63 lower-case letters"),
    (dict(name="1-alexnet"), "name", "starting with a letter"),
    (dict(name="alexnet_v2"), "name", "is not valid"),
    (dict(name="a" * 64), "name", "is not valid"),
    (dict(namespace="Vision"), "namespace", "namespace 'Vision' is not valid"),
    (dict(replicas=0), "replicas", "replicas is 0; expected at least 1"),
    (dict(replicas=3, max_replicas=2), "max_replicas", "max_replicas 2 is below replicas 3"),
    (dict(cpu="0"), "cpu", r"cpu '0' is no Kubernetes quantity above zero; expected e.g. '1' or '500m'"),
    (dict(cpu="-1"), "cpu", "no Kubernetes quantity"),
    (dict(memory="2GB"), "memory", r"memory '2GB' is no Kubernetes quantity .* '2Gi' or '512Mi'"),
    (dict(gpus=-1), "gpus", "gpus is -1; expected 0 or more"),
    (dict(runtime_version="25.01 py3"), "runtime_version", "is no image tag"),
])
def test_bad_options_are_named(options, argument, message):
    with pytest.raises(ArgumentError, match=message) as caught:
        KServeOptions(**{"storage_uri": STORAGE, **options})
    assert caught.value.argument == argument
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("value", ["250m", "1.5", "4", "512Mi", "2Gi", "1e3", "0.5"])
def test_quantities_kubernetes_takes(value):
    assert KServeOptions(STORAGE, cpu=value, memory=value).cpu == value


def test_a_failure_keeps_the_good_manifest(tmp_path, cpu_repo):
    good = write_inference_service(cpu_repo, tmp_path / "isvc.yaml", KServeOptions(STORAGE)).path
    before = good.read_bytes()
    with pytest.raises(ArgumentError, match="would sit idle"):
        write_inference_service(cpu_repo, good, KServeOptions(STORAGE, gpus=1))
    with pytest.raises(RepositoryError, match="holds no model"):
        write_inference_service(tmp_path, good, KServeOptions(STORAGE))  # a folder, but no repository
    with pytest.raises(RepositoryError, match="is not a folder"):
        write_inference_service(tmp_path / "missing", good, KServeOptions(STORAGE))
    assert good.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["isvc.yaml"]  # no temporary file left


def test_yaml_writer_reads_back_as_written():
    yaml = pytest.importorskip("yaml", reason="PyYAML (a kserve dependency) reads the YAML back")
    tricky = {"plain": "triton", "number": "1", "quantity": "2Gi", "boolean words": ["yes", "No", "on", "null"],
              "uri": "s3://bucket/a b#c", "colon": "a: b", "nested": [{"k": 1, "v": True}, [], {}],
              "nvidia.com/gpu": "1", "unicode": "é\t\"x\""}
    assert yaml.safe_load(to_yaml(tricky)) == tricky


def test_cli(cli, tmp_path, small_onnx, one_line_error, read_service):
    repo, manifest = tmp_path / "repo", tmp_path / "isvc.yaml"
    bad = cli("triton", "--repo", repo, "--onnx", small_onnx, "--kserve", manifest, "--storage-uri", "http://host/m")
    one_line_error(bad, r"storage URI 'http://host/m' is not one KServe .* \(--storage-uri\)$", code=2)
    assert not repo.exists() and not manifest.exists()  # checked before any model was written
    result = cli("triton", "--repo", repo, "--onnx", small_onnx, "--kserve", manifest, "--storage-uri", STORAGE,
                 "--replicas", "2", "--max-replicas", "4", "--memory", "4Gi")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"InferenceService alexnet: {manifest} serves small, CPU only"
    predictor = read_service(manifest).spec.predictor
    assert (predictor.min_replicas, predictor.max_replicas, predictor.model.resources.limits["memory"]) == (2, 4, "4Gi")
    # The repository as it is: no --onnx or --engine needed; the models' kinds decide.
    gpus = cli("triton", "--repo", repo, "--kserve", manifest, "--storage-uri", STORAGE, "--gpus", "1")
    one_line_error(gpus, r"so 1 GPU\(s\) would sit idle; .* \(--gpus\)$", code=2)
    assert read_service(manifest).spec.predictor.min_replicas == 2  # the good manifest is kept
    one_line_error(cli("triton", "--repo", repo, "--kserve", manifest), "--kserve needs --storage-uri", code=2)
    one_line_error(cli("triton", "--repo", repo, "--storage-uri", STORAGE), "add --kserve FILE", code=2)
