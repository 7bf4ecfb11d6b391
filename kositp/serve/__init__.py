"""Serving: an OpenAI-compatible API over an exported model, and a Chainlit page that talks to it.

:mod:`~kositp.serve.source` decides which model is served (the profile's promoted export, else
its latest), :mod:`~kositp.serve.app` is the FastAPI app (auth, validation, caps, admission),
:mod:`~kositp.serve.hf_backend` generates with transformers and :mod:`~kositp.serve.vllm_backend`
runs vLLM's own server in its environment and proxies to it. Nothing here imports torch or
transformers at module import; chainlit is imported only by :mod:`~kositp.serve.chat_app`.
"""
