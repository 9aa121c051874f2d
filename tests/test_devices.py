"""Devices: the option's resolution, its errors, and its plumbing through models, compare and the workshop (CPU)."""

import pickle
import sys

import numpy as np
import pytest
import torch

import trusteq
from conftest import NLI, make_bert
from trusteq.devices import DeviceError, ort_providers, resolve_device
from trusteq.errors import ModelError, TrustEqError
from trusteq.executors import ExecutorError, LocalExecutor
from trusteq.predict import predict_sharded
from trusteq.models import ONNXClassifier, TaskModel, export_onnx, load_model

PAIRS = [("a man is sleeping", "a person rests"), ("two dogs run", "dogs are running outside in the park"),
         ("a red ball", "a blue ball"), ("the cat sat on the grass", "a cat"), ("x", "y")] * 7


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch):
    """What the resolver sees on a machine with two GPUs (nothing is run on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_cpu_and_auto_resolve_to_the_cpu_without_a_gpu(no_gpu):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_cuda_requests_resolve_where_gpus_exist(two_gpus):
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"'cuda:2'.*cpu, cuda:0, cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:1"])
def test_a_cuda_request_without_a_gpu_names_the_request_and_what_exists(no_gpu, spec):
    with pytest.raises(DeviceError, match=rf"'{spec}' requested but this machine has cpu only") as err:
        resolve_device(spec)
    assert isinstance(err.value, TrustEqError) and isinstance(err.value, ValueError)  # CLI: exit 2


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cpu:1", "", "cuda:", "mps", "auto:0"])
def test_malformed_devices_are_refused(spec):
    with pytest.raises(DeviceError, match=r"expected auto, cpu, cuda or cuda:N"):
        resolve_device(spec)


def test_onnx_runtime_providers(monkeypatch):
    import onnxruntime as ort

    assert ort_providers(torch.device("cpu")) == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    cuda1 = torch.device("cuda", 1)
    assert ort_providers(cuda1) == [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    assert ort_providers(cuda1, quantized=True) == ["CPUExecutionProvider"]  # dynamic int8: CPU kernels
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert ort_providers(cuda1) == ["CPUExecutionProvider"]  # the CPU onnxruntime wheel


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    ref = make_bert(root / "ref", NLI, seed=0)
    export_onnx(ref, root / "onnx")
    return ref, root / "onnx"


def test_models_run_on_the_requested_device_and_pickle_as_recipes(tiny):
    ref, onnx_dir = tiny
    hf = TaskModel(load_model(ref, device="cpu", max_length=40, batch_size=8), NLI,
                   {"ref": ["entailment", "neutral", "contradiction"]})
    assert hf.model.device == torch.device("cpu") and next(hf.model.model.parameters()).device.type == "cpu"
    onnx = TaskModel(ONNXClassifier(onnx_dir, device="cpu", threads=1), NLI)
    assert onnx.model.provider == "CPUExecutionProvider" and onnx.model.device == torch.device("cpu")
    onnx.set_pair_by_pair()
    for model in (hf, onnx):
        blob = pickle.dumps(model)
        assert len(blob) < 10_000  # a recipe, not the weights
        again = pickle.loads(blob)
        assert (again.name, again.batching, again.override, again.pair_by_pair, again.model.max_length) == \
            (model.name, model.batching, model.override, model.pair_by_pair, model.model.max_length)
        assert again.fingerprint == model.fingerprint and again.model.device == model.model.device
        assert np.array_equal(again(PAIRS), model(PAIRS))
    assert pickle.loads(pickle.dumps(onnx)).model.threads == 1


def test_a_recipe_refuses_a_model_replaced_on_disk(tiny, tmp_path):
    ref, _ = tiny
    folder = make_bert(tmp_path / "m", NLI, seed=5)
    blob = pickle.dumps(TaskModel(load_model(folder), NLI))
    make_bert(folder, NLI, seed=6)
    with pytest.raises(ModelError, match="changed since it was loaded"):
        pickle.loads(blob)


def test_sharded_prediction_is_the_local_result_bit_for_bit(tiny, monkeypatch):
    import trusteq.predict

    monkeypatch.setattr(trusteq.predict, "SHARD_PAIRS", 5)
    ref, _ = tiny
    model = TaskModel(load_model(ref, batch_size=4), NLI)
    assert len(model.batch_plan(PAIRS)) > 3
    assert np.array_equal(predict_sharded(LocalExecutor(), model, PAIRS), model(PAIRS))


@pytest.mark.slow
def test_compare_records_device_executor_and_providers(nli_models, shared_data):
    before = torch.get_num_threads()
    r = trusteq.compare(str(nli_models["ref"]), [str(nli_models["small"])], shared_data / "snli/test.tsv",
                        task="nli", limit=20, explainers=["lime"], lime_samples=20, explain_limit=2, n_boot=20,
                        progress=False, device="cpu", threads=1)
    s = r["settings"]
    assert s["device"] == "cpu"
    assert s["executor"] == {"kind": "local", "address": None, "workers": 1, "threads_per_worker": 1}
    for record in s["explain_runtime"].values():
        assert record["device"] == "cpu" and record["provider"] == "CPUExecutionProvider"
    assert torch.get_num_threads() == before  # restored


def test_compare_refuses_absent_devices_and_unknown_executors_before_any_work(no_gpu, tmp_path):
    missing = tmp_path / "no-data.tsv"  # never read: the options are refused first
    with pytest.raises(DeviceError, match="'cuda:1' requested"):
        trusteq.compare("ref", ["cand"], missing, task="nli", device="cuda:1")
    with pytest.raises(DeviceError, match="'gpu'"):
        trusteq.compare("ref", ["cand"], missing, task="nli", device="gpu")
    with pytest.raises(ExecutorError, match="executor 'dask'"):
        trusteq.compare("ref", ["cand"], missing, task="nli", executor="dask")
    with pytest.raises(ExecutorError, match="needs executor 'ray'"):
        trusteq.compare("ref", ["cand"], missing, task="nli", ray_address="ray://head:10001")


def test_executor_ray_without_ray_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ExecutorError) as err:
        trusteq.compare("ref", ["cand"], tmp_path / "no-data.tsv", task="nli", executor="ray")
    message = str(err.value)
    assert 'pip install "trusteq[ray]"' in message and "\n" not in message
    assert isinstance(err.value, TrustEqError) and isinstance(err.value, ValueError)


def test_workshop_refuses_an_absent_gpu_before_training(no_gpu, tiny, tmp_path):
    from trusteq.workshop import compress, finetune

    ref, _ = tiny
    with pytest.raises(DeviceError, match="'cuda' requested"):
        finetune(str(ref), tmp_path / "never-read.tsv", "nli", tmp_path / "out", device="cuda")
    with pytest.raises(DeviceError, match="'cuda' requested"):
        compress(ref, "int8", tmp_path / "int8", device="cuda")
