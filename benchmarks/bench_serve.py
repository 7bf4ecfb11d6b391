"""Requests/s, CPU per request and time to first token of ``kositp serve`` against the same generation in-process.

For 1, 4 and 16 concurrent clients, each sending streamed chat requests one after another: over
HTTP (a ``kositp serve`` subprocess on loopback, the ``openai`` client) and in-process (the
served code's own generator, in a pool of as many threads as the server has slots). Same model,
prompt, ``max_tokens``, greedy decoding and torch threads in both, so the ratios are what the
HTTP layer (FastAPI, SSE, the client, admission) costs. CPU per request counts every process
involved (client and server over HTTP); on a machine shared with other jobs it is the figure to
trust, because two processes get a larger share of a contended CPU than one. The model is ``--model``, else the demo
profile's promoted or latest export, else a tiny export made here from the demo's tiny model.
Usage from the repository root: ``.venv/bin/python benchmarks/bench_serve.py [--requests 48]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from kositp.serve.vllm_backend import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe

KOREAN = "대한민국의 수도는 어디인가요? 한 문장으로 답하세요."
CLIENTS = (1, 4, 16)


def demo_model(work: Path) -> Path:
    """The demo profile's served export when ``make demo`` ran, else a tiny export made now."""
    from kositp.errors import PermanentError
    from kositp.serve.source import served_model

    try:
        return served_model(None, "demo").path
    except PermanentError:
        pass
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kositp.export.merge import save_merged
    from kositp.models.refs import ModelRef

    base = ModelRef.parse("tiny-llama").resolve(work)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM",
                      init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(base), lora).save_pretrained(work / "adapter")
    AutoTokenizer.from_pretrained(base).save_pretrained(work / "adapter")
    save_merged(work / "adapter", work / "merged", "bfloat16", base)
    return work / "merged"


def run_clients(clients: int, total: int, one_request, cpu_seconds) -> dict[str, float]:
    """``total`` requests from ``clients`` threads: requests/s, median / p90 time to first token, and
    CPU ms per request (``cpu_seconds()``: every process involved), which other jobs on a shared
    machine do not distort the way they distort wall-clock figures."""
    per_client = max(1, total // clients)
    first_tokens: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(per_client):
            ttft = one_request()
            with lock:
                first_tokens.append(ttft)

    start, cpu_start = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    first_tokens.sort()
    return {
        "rps": clients * per_client / elapsed,
        "cpu_ms": cpu / (clients * per_client) * 1000,
        "ttft_ms": statistics.median(first_tokens) * 1000,
        "ttft_p90_ms": first_tokens[int(0.9 * (len(first_tokens) - 1))] * 1000,
    }


def in_process(model: Path, slots: int, max_tokens: int):
    from kositp.serve.app import Prompter
    from kositp.serve.hf_backend import HFGenerator, Sampling
    from kositp.serve.schemas import ChatRequest

    generator = HFGenerator(model, "cpu")
    request = ChatRequest(model="kositp", messages=[{"role": "user", "content": KOREAN}])
    prompt = Prompter(generator.tokenizer).chat_ids(request)
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, top_p=1.0, top_k=-1, seed=0, stop=())
    pool = ThreadPoolExecutor(slots)  # the server's slots

    def generate() -> float:
        start, first = time.perf_counter(), None

        def work() -> None:
            nonlocal first
            for event in generator.generate(prompt, sampling, threading.Event()):
                if first is None and isinstance(event, str):
                    first = time.perf_counter() - start

        pool.submit(work).result()
        return first if first is not None else time.perf_counter() - start

    return generate


def transformers_generate(model: Path, max_tokens: int) -> float:
    """Requests/s of one client calling ``model.generate`` (greedy, same prompt and length): a reference."""
    import torch

    from kositp.models.causal_lm import load_causal_lm
    from kositp.serve.app import Prompter
    from kositp.serve.schemas import ChatRequest

    lm, tokenizer = load_causal_lm(model, "cpu")
    request = ChatRequest(model="kositp", messages=[{"role": "user", "content": KOREAN}])
    ids = torch.tensor([Prompter(tokenizer).chat_ids(request)])
    runs, start = 0, time.perf_counter()
    with torch.inference_mode():
        while runs < 16:
            lm.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                        do_sample=False, pad_token_id=tokenizer.pad_token_id)
            runs += 1
    return runs / (time.perf_counter() - start)


def over_http(url: str, max_tokens: int):
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0, timeout=300)

    def generate() -> float:
        start, first = time.perf_counter(), None
        stream = client.chat.completions.create(
            model="kositp", messages=[{"role": "user", "content": KOREAN}], max_tokens=max_tokens,
            temperature=0, stream=True,
        )
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - start
        return first if first is not None else time.perf_counter() - start

    return generate


def start_server(model: Path, slots: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "kositp", "serve", "--model", str(model), "--port", str(port),
               "--concurrency", str(slots), "--queue-size", str(max(CLIENTS)), "--device", "cpu"]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                               env={**os.environ, "OMP_NUM_THREADS": os.environ["OMP_NUM_THREADS"]})
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the demo export)")
    parser.add_argument("--requests", type=int, default=48, help="requests per client count")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--slots", type=int, default=2, help="the server's --concurrency")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (server and in-process)")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    print(describe())
    with tempfile.TemporaryDirectory(prefix="kositp-bench-serve-") as tmp:
        model = args.model or demo_model(Path(tmp))
        print(f"model {model} | {args.requests} streamed chat requests per row, max_tokens {args.max_tokens}, "
              f"greedy | server slots {args.slots} | torch threads {args.threads}")
        local = in_process(model, args.slots, args.max_tokens)
        local()  # warm-up
        local_rows = {c: run_clients(c, args.requests, local, time.process_time) for c in CLIENTS}
        reference = transformers_generate(model, args.max_tokens)
        server, url = start_server(model, args.slots, Path(tmp) / "serve.log")
        try:
            remote = over_http(url, args.max_tokens)
            remote()
            server_process = psutil.Process(server.pid)

            def both_processes() -> float:
                return time.process_time() + sum(server_process.cpu_times()[:2])

            http_rows = {c: run_clients(c, args.requests, remote, both_processes) for c in CLIENTS}
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    print(f"{'clients':>7} | {'req/s in-process':>16} | {'req/s HTTP':>10} | {'ratio':>5} | "
          f"{'CPU ms/req in-process':>21} | {'CPU ms/req HTTP':>15} | {'ratio':>5} | "
          f"{'TTFT ms in-process':>18} | {'TTFT ms HTTP':>12} | {'TTFT p90 ms HTTP':>16}")
    for clients in CLIENTS:
        local_row, http_row = local_rows[clients], http_rows[clients]
        print(f"{clients:>7} | {local_row['rps']:>16.1f} | {http_row['rps']:>10.1f} | "
              f"{http_row['rps'] / local_row['rps']:>5.2f} | {local_row['cpu_ms']:>21.1f} | "
              f"{http_row['cpu_ms']:>15.1f} | {http_row['cpu_ms'] / local_row['cpu_ms']:>5.2f} | "
              f"{local_row['ttft_ms']:>18.1f} | {http_row['ttft_ms']:>12.1f} | {http_row['ttft_p90_ms']:>16.1f}")
    print(f"reference: transformers model.generate, 1 client, same prompt and length: {reference:.1f} req/s "
          "(stops only at the generation config's EOS ids)")


if __name__ == "__main__":
    main()
