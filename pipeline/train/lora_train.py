"""Train a LoRA adapter on (chat messages → answer) pairs with peft + transformers; run in the trainer environment.

The pipeline's own environment has no torch: :func:`pipeline.train.finetune.train_adapter` writes a job file and runs

    python -m pipeline.train.lora_train JOB.json

in the vLLM environment (torch, transformers, peft). The prompt is rendered with the base model's own chat
template, exactly as the vLLM server renders it at inference, and only the answer tokens (with the template's
end-of-turn) carry loss. Training stops early once greedy decoding reproduces every answer (checked by teacher
forcing) or the mean loss is below ``target_loss`` — a stop rule of its own on purpose (a plain training loop, not
transformers' Trainer): what matters is that the corrections come back under greedy decoding, which a loss
threshold alone does not tell. On success the adapter (``adapter_config.json`` + weights) and ``train_metrics.json`` are in
``out_dir``; on failure the exit code is non-zero and the last stderr line says why.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

TARGET_MODULES = {
    "all": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


REPORT_SAMPLE = 64  # examples the initial and the step-limit figures are computed on


def _available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 1 << 62


def memory_needed(config: dict, batch_tokens: int, answer_tokens: int, trained_layers: int, checkpointing: bool) -> int:
    """Bytes training needs, roughly: fp32 weights (frozen), activations kept for the backward pass (only the
    layers LoRA trains keep them), and the output layer's logits at the answer tokens."""
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    inter, vocab = config.get("intermediate_size", 4 * hidden), config["vocab_size"]
    params = layers * (4 * hidden * hidden + 3 * hidden * inter) + vocab * hidden * (
        1 if config.get("tie_word_embeddings") else 2
    )
    per_token_layer = 16 * hidden + 4 * inter  # floats kept per token and layer (attention + MLP intermediates)
    kept = 1 if checkpointing else min(trained_layers or layers, layers)
    activations = (batch_tokens * per_token_layer * kept + 3 * answer_tokens * vocab) * 4
    return params * 4 + activations


def encode(tokenizer, messages: list[dict], answer: str) -> tuple[list[int], list[int]]:
    """(input ids, labels): the inference prompt, then the answer as the chat template closes it."""
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
    if not full.startswith(prompt) or answer not in full[len(prompt) :]:
        raise ValueError(
            "the chat template does not render the answer after the generation prompt; cannot build labels"
        )
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return p_ids + a_ids, [-100] * len(p_ids) + a_ids


def _batches(torch, examples, batch_size: int, pad_id: int, generator=None):
    """Padded batches, shuffled by ``generator`` (None: in order)."""
    order = (
        torch.randperm(len(examples), generator=generator).tolist()
        if generator is not None
        else list(range(len(examples)))
    )
    for start in range(0, len(order), batch_size):
        batch = [examples[i] for i in order[start : start + batch_size]]
        width = max(len(ids) for ids, _ in batch)
        yield (
            torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch]),
            torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch]),
            torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch]),
        )


def train(job: dict) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hp = job["hyperparameters"]
    torch.manual_seed(hp["seed"])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(job["base_model"])
    examples = [encode(tokenizer, e["messages"], e["answer"]) for e in job["examples"]]
    if not examples:
        raise ValueError("no training examples")
    config = (
        json.loads((Path(job["base_model"]) / "config.json").read_text())
        if (Path(job["base_model"]) / "config.json").exists()
        else None
    )
    checkpointing = False
    if config and device == "cpu":  # say so before loading anything when it cannot fit
        longest = max(len(ids) for ids, _ in examples)
        batch_tokens = hp["batch_size"] * longest
        answer_tokens = hp["batch_size"] * max(sum(1 for x in labels if x != -100) for _, labels in examples)
        available = _available_bytes()
        need = lambda cp: memory_needed(config, batch_tokens, answer_tokens, hp.get("layers") or 0, cp)  # noqa: E731
        if need(False) > 0.8 * available:
            checkpointing = True
        if need(True) > 0.8 * available:
            raise MemoryError(
                f"training needs about {need(True) / 2**30:.1f} GiB (fp32 weights, batch of "
                f"{hp['batch_size']} × {longest} tokens) and {available / 2**30:.1f} GiB are available: lower --batch-size, "
                f"or train on a machine with more memory or a GPU"
            )
    model = AutoModelForCausalLM.from_pretrained(job["base_model"], dtype=torch.float32).to(device)
    n_layers = model.config.num_hidden_layers
    layers = hp.get("layers") or 0
    lora = dict(
        r=hp["rank"],
        lora_alpha=hp["alpha"],
        lora_dropout=0.0,
        target_modules=TARGET_MODULES[hp.get("modules", "all")],
        task_type="CAUSAL_LM",
    )
    if layers and layers < n_layers:
        lora["layers_to_transform"] = list(range(n_layers - layers, n_layers))
    if checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(**lora))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    trainable = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(trainable, lr=hp["learning_rate"], weight_decay=0.0)
    generator = torch.Generator().manual_seed(hp["seed"])

    causal = model.get_base_model()  # the LoRA layers are inside it

    def answer_logits(ids, labels, mask):
        """(logits, targets) at the answer tokens only: the prompt's positions never reach the output layer,
        which for a 150K-token vocabulary costs more than the whole decoder on a CPU."""
        hidden = causal.model(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state[:, :-1]
        target = labels[:, 1:].to(device)
        where = target != -100
        return causal.lm_head(hidden[where]).float(), target[where], where

    def full_pass(sample: int | None = None) -> tuple[float, float]:
        """(mean answer-token loss, share of examples whose every answer token is the argmax): the second is
        'greedy decoding reproduces the answer' (with ``min_margin`` logits to spare), by teacher forcing. On the
        first ``sample`` examples only, where only a figure for the report is wanted (a pass over thousands of
        examples costs a third of an epoch on a CPU)."""
        model.eval()
        total, tokens, exact = 0.0, 0, 0
        chosen = examples[:sample] if sample else examples
        with torch.no_grad():
            for ids, labels, mask in _batches(torch, chosen, hp["batch_size"], pad_id):
                logits, target, where = answer_logits(ids, labels, mask)
                total += float(torch.nn.functional.cross_entropy(logits, target, reduction="sum"))
                tokens += int(target.numel())
                wanted = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1)
                rival = logits.scatter(-1, target.unsqueeze(-1), float("-inf")).max(-1).values
                # a margin, not a bare argmax: the server's kernels differ from these in the last bits
                hit = torch.ones_like(where)
                hit[where] = wanted - rival >= hp["min_margin"]
                exact += int(hit.all(dim=1).sum())
        model.train()
        return total / max(tokens, 1), exact / len(chosen)

    started = time.perf_counter()
    initial, _ = full_pass(REPORT_SAMPLE)
    step, loss, exact = 0, initial, 0.0
    model.train()
    while step < hp["max_steps"]:
        for ids, labels, mask in _batches(torch, examples, hp["batch_size"], pad_id, generator):
            logits, target, _ = answer_logits(ids, labels, mask)
            loss_t = torch.nn.functional.cross_entropy(logits, target)
            if not math.isfinite(loss_t.item()):
                raise FloatingPointError(
                    f"training loss became {loss_t.item()} at step {step}: lower the learning rate"
                )
            loss_t.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optim.step()
            optim.zero_grad()
            step += 1
            print(
                f"step {step}/{hp['max_steps']}: loss {loss_t.item():.4f} ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
            if step >= hp["max_steps"]:
                break
        # at the step limit the figures are only reported: a sample does; else every example decides early stopping
        loss, exact = full_pass(REPORT_SAMPLE if step >= hp["max_steps"] else None)
        print(f"step {step}: loss {loss:.4f}, greedy-exact {exact:.2%}", file=sys.stderr, flush=True)
        if exact == 1.0 or loss <= hp["target_loss"]:
            break
    model.save_pretrained(job["out_dir"])
    return {
        "steps": step,
        "initial_loss": round(initial, 6),
        "final_loss": round(loss, 6),
        "greedy_exact": round(exact, 4),
        "train_seconds": round(time.perf_counter() - started, 2),
        "device": device,
        "examples": len(examples),
        "longest_sequence": max(len(ids) for ids, _ in examples),
        "gradient_checkpointing": checkpointing,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m pipeline.train.lora_train JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        metrics = train(job)
    except Exception as exc:  # the caller reads the reason from the last line
        print(f"training failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    (Path(job["out_dir"]) / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
