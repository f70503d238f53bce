"""Train: reviewers' corrections in, a better translator out.

In: the corrections in force (:mod:`pipeline.review.corrections`). :mod:`.supervised` turns them into
(English unit → human unit) examples split by conversation; :mod:`.finetune` trains a LoRA adapter
(:mod:`.lora_train`, run in the vLLM environment), evaluates it against the current translator and a few-shot
prompt through the server, and decides per language.

Out: ``WORKSPACE/adapters/aNNNN/`` (an adapter version, never changed afterwards), the decisions in
``WORKSPACE/translator/`` (:mod:`pipeline.translate.registry`: the next translate run uses what was activated),
``WORKSPACE/reports/finetune-aNNNN.json``.
"""
