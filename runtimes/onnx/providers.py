"""Which ONNX Runtime execution providers a session gets: the ones asked for, checked and with the
toolkit's options applied (TF32, CUDA graphs, TensorRT's caches), or the best that loads here.

What is asked for must be honoured in full (OnnxRuntime refuses a session that fell back); the
default picks, best first, TensorRT, CUDA, then CPU, trying each GPU provider's library first so
a CPU machine stays silent.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from typing import Sequence, Union

import onnxruntime as ort

from alexnet_export.errors import OptionError, ProviderError

# A provider is a name or a (name, options) pair, as ONNX Runtime takes them.
Provider = Union[str, tuple[str, dict]]
Providers = Union[Provider, Sequence[Provider]]

# Best first. TensorRT and CUDA need GPU libraries that may be absent even where the
# onnxruntime-gpu wheel lists them as available.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
_PROVIDER_LIBRARIES = {
    "TensorrtExecutionProvider": "onnxruntime_providers_tensorrt",
    "CUDAExecutionProvider": "onnxruntime_providers_cuda",
}




def resolve_providers(providers: Providers | None, *, tensorrt_cache_dir: str | Path | None = None,
                      tf32: bool | None = None, enable_cuda_graph: bool = False) -> tuple[list[Provider], bool]:
    """The provider list for a session, and whether it was asked for (then it must load in full).
    OnnxRuntime's docstring says what each option means."""
    if providers is not None:
        providers = _provider_list(providers)
    if tensorrt_cache_dir is not None:
        providers = _with_tensorrt_cache(providers, Path(tensorrt_cache_dir))
    # TF32 and CUDA graphs are CUDA-provider options: by default leave TensorRT out when they are asked for.
    cuda_only = tf32 is False or enable_cuda_graph
    requested = _resolve_providers(providers, skip=("TensorrtExecutionProvider",) if cuda_only else ())
    return _with_cuda_options(requested, tf32, enable_cuda_graph), providers is not None


def _resolve_providers(providers: list[Provider] | None, skip: tuple[str, ...] = ()) -> list[Provider]:
    available = ort.get_available_providers()
    if providers is None:
        return [p for p in PREFERRED_PROVIDERS if p in available and p not in skip and provider_loads(p)]
    unknown = [name for name in map(provider_name, providers) if name not in available]
    if unknown:
        raise ProviderError(
            f"execution provider {unknown[0]} is not available in this onnxruntime build;"
            f" available: {', '.join(available)}"
        )
    return providers


def _with_cuda_options(providers: list[Provider], tf32: bool | None, cuda_graph: bool) -> list[Provider]:
    """`providers` with tf32 and enable_cuda_graph set as the CUDA provider's options."""
    names = [provider_name(p) for p in providers]
    if cuda_graph and names[:1] != ["CUDAExecutionProvider"]:
        raise ProviderError(f"enable_cuda_graph needs the CUDA provider to run the model; providers here are {names}"
                            " (a CUDA graph captures CUDA work only)")
    if tf32 is False and "TensorrtExecutionProvider" in names:
        raise OptionError("tf32=False is set on ONNX Runtime's CUDA provider only, and TensorrtExecutionProvider"
                          " is asked for; pass providers=['CUDAExecutionProvider'] for strict FP32", argument="tf32")
    wanted = {"use_tf32": str(int(tf32))} if tf32 is not None else {}
    if cuda_graph:
        wanted["enable_cuda_graph"] = "1"
    if not wanted:
        return providers
    result = []
    for provider in providers:
        if provider_name(provider) == "CUDAExecutionProvider":
            given = {} if isinstance(provider, str) else {key: str(value) for key, value in provider[1].items()}
            clash = [key for key in wanted if key in given and given[key] != wanted[key]]
            if clash:
                raise OptionError(f"CUDAExecutionProvider option {clash[0]}={given[clash[0]]} contradicts"
                                  f" {clash[0]}={wanted[clash[0]]} from tf32/enable_cuda_graph; give it once",
                                  argument="providers")
            provider = ("CUDAExecutionProvider", {**given, **wanted})
        result.append(provider)
    return result


def _provider_list(providers: Providers) -> list[Provider]:
    """`providers` as the list ONNX Runtime takes: names and (name, options) tuples.

    One name or one pair is one provider; any other list or tuple is a list of providers (a
    tuple of names is names, not a pair: its second item is no options dict).
    """
    if isinstance(providers, str) or _is_pair(providers):
        providers = [providers]
    if not isinstance(providers, (list, tuple)):
        raise _providers_error(f"is {providers!r}")
    odd = [provider for provider in providers if not isinstance(provider, str) and not _is_pair(provider)]
    if odd:
        raise _providers_error(f"holds {odd[0]!r}")
    return [provider if isinstance(provider, str) else tuple(provider) for provider in providers]


def _providers_error(found: str) -> OptionError:
    return OptionError(f"providers {found}; expected a provider name, a (name, options dict) pair, or a list or"
                       " tuple of those", argument="providers")


def _is_pair(provider) -> bool:
    return (isinstance(provider, (list, tuple)) and len(provider) == 2 and isinstance(provider[0], str)
            and isinstance(provider[1], dict))


def provider_name(provider: Provider) -> str:
    return provider if isinstance(provider, str) else provider[0]


def _with_tensorrt_cache(providers: list[Provider] | None, folder: Path) -> list[Provider]:
    """TensorRT first, with its engine and timing caches in `folder`; the rest as asked (default CUDA, CPU)."""
    folder.mkdir(parents=True, exist_ok=True)
    options = {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(folder),
    }
    others = [p for p in (providers or ["CUDAExecutionProvider", "CPUExecutionProvider"])
              if provider_name(p) != "TensorrtExecutionProvider"]
    return [("TensorrtExecutionProvider", options), *others]


def provider_loads(provider: str) -> bool:
    """Whether a GPU provider's shared library and its CUDA dependencies can be loaded.

    Asking ONNX Runtime for a provider whose libraries are missing prints errors and falls
    back quietly; trying the library first keeps the default path silent on CPU machines.
    """
    library = _PROVIDER_LIBRARIES.get(provider)
    if library is None:
        return True
    name = f"{library}.dll" if sys.platform == "win32" else f"lib{library}.so"
    path = Path(ort.__file__).parent / "capi" / name
    if not path.exists():
        return False
    try:
        ctypes.CDLL(str(path), mode=getattr(os, "RTLD_LAZY", 0) | getattr(ctypes, "RTLD_GLOBAL", 0))
    except OSError:
        return False
    return True
