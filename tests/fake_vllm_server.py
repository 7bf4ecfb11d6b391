"""A stand-in for vLLM's OpenAI server, for testing ``kositp serve --backend vllm`` without a GPU.

Started as ``python -m vllm.entrypoints.openai.api_server ...`` through a shim package the test
writes; it takes the same arguments, requires ``VLLM_API_KEY`` as vLLM does, answers a fixed
Korean reply (whole or streamed) and records every request it gets, so the test can see exactly
what the proxy forwarded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

REPLY = ["서울", "입니다."]


def main() -> None:
    parser = argparse.ArgumentParser()
    for flag in ("--model", "--served-model-name", "--host", "--max-model-len"):
        parser.add_argument(flag)
    parser.add_argument("--port", type=int)
    args, _ = parser.parse_known_args()
    record_path, key = os.environ["FAKE_VLLM_RECORD"], os.environ.get("VLLM_API_KEY", "")

    def record(row: dict) -> None:
        with open(record_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    record({"argv": sys.argv[1:], "pid": os.getpid(), "key_length": len(key)})
    time.sleep(float(os.environ.get("FAKE_VLLM_LOAD_S", "0")))  # a model that takes this long to load
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict:
        return {}

    async def answer(request: Request, chat: bool):
        body = await request.json()
        authorization = request.headers.get("authorization")
        record({"path": request.url.path, "body": body, "authorization": authorization})
        if authorization != f"Bearer {key}":
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        base = {"id": "fake", "created": 0, "model": body["model"]}
        if body.get("stream"):
            def chunks():
                for piece in REPLY:
                    choice = {"index": 0, "delta": {"content": piece}} if chat else {"index": 0, "text": piece}
                    kind = "chat.completion.chunk" if chat else "text_completion"
                    yield f"data: {json.dumps({**base, 'object': kind, 'choices': [{**choice, 'finish_reason': None}]})}\n\n"
                yield "data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")
        text = "".join(REPLY)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
        usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
        kind = "chat.completion" if chat else "text_completion"
        return {**base, "object": kind, "choices": [{**choice, "finish_reason": "stop"}], "usage": usage}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await answer(request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await answer(request, chat=False)

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
