"""Build a tiny random-weight Qwen2-style chat model for tests and offline use (no model hub needed).

A byte-level BPE tokenizer is trained on multilingual text covering all ten scripts (shipped with the
project, written by it), then a Qwen2 model of a few MB starts from random weights and is trained for a few
hundred steps on the project's translation prompts → the five aligned sentences of each language, so that it
answers in the asked language and *stops* (instead of running to the token budget). Its answers are not
translations of the input: it exercises the plumbing (server, client, checks, flags, QE), not quality.

Needs torch, transformers and tokenizers (the vLLM environment has them):

    python -m pipeline.serve.tiny_models OUT_DIR [--steps N]
    python -m pipeline.serve.tiny_models --ship   # rebuild the copies that ship in pipeline/serve/data/tiny_models

Both models ship built (a few MB each) so that a fresh machine does not spend minutes training them. Each
carries the hash of its recipe — this file, the corpus, the prompt templates and its arguments — in
``POLYGLOT_TINY_MODEL``; :func:`pipeline.serve.vllm.ensure_tiny_model` uses the shipped copy only while the
recipe is unchanged, and builds anew otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CORPUS = Path(__file__).with_name("data") / "multilingual_corpus.json"
SHIPPED = Path(__file__).with_name("data") / "tiny_models"
MARKER = "POLYGLOT_TINY_MODEL"
# name → training steps (``tiny-random``: random weights, no training)
SHIPPED_MODELS = {"tiny": 300, "tiny-random": 0}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def recipe_hash(steps: int) -> str:
    """What decides the model's weights: this builder, its corpus, the prompt templates it trains on, its steps. The
    builder counts by its syntax tree, not its bytes: formatting it or editing a comment rebuilds nothing."""
    import ast
    import hashlib

    h = hashlib.sha256()
    from pipeline.translate.settings import prompt_template

    builder = ast.dump(ast.parse(Path(__file__).read_text(encoding="utf-8")))
    h.update(b"tiny_models.py\0" + builder.encode() + b"\0")
    h.update(CORPUS.name.encode() + b"\0" + CORPUS.read_bytes() + b"\0")
    for lang in sorted(json.loads(CORPUS.read_text(encoding="utf-8"))):  # the system prompts it is trained on
        if lang != "en":
            h.update(lang.encode() + b"\0" + prompt_template(lang).encode() + b"\0")
    h.update(f"steps={steps}".encode())
    return h.hexdigest()[:16]


def built_recipe(model_dir: Path) -> str | None:
    """The recipe hash a built model records (None: not built, or built before recipes were recorded)."""
    try:
        return json.loads((Path(model_dir) / MARKER).read_text()).get("recipe")
    except (OSError, ValueError, AttributeError):
        return None


def training_pairs() -> list[tuple[list[dict], str]]:
    """(chat messages, answer) for every target language and aligned sentence of the corpus."""
    from pipeline.translate.settings import build_messages

    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    return [
        (build_messages(lang, english), corpus[lang][i])
        for lang in corpus
        if lang != "en"
        for i, english in enumerate(corpus["en"])
    ]


def _train_to_answer_and_stop(model, tokenizer, steps: int, seed: int) -> float:
    import torch

    torch.manual_seed(seed)
    examples = []
    for messages, answer in training_pairs():
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        examples.append((p_ids + a_ids, [-100] * len(p_ids) + a_ids))
    optim = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    loss_value = float("nan")
    for step in range(steps):  # noqa: B007 - the name is part of the recipe the shipped models record
        batch = [examples[i] for i in torch.randint(len(examples), (8,)).tolist()]
        width = max(len(ids) for ids, _ in batch)
        pad = model.config.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
        attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
        loss_value = float(loss)
    model.eval()
    return loss_value


def build(out_dir: Path, vocab_size: int = 3000, seed: int = 0, steps: int = 300, recipe: str | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out_dir.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    lines = [line for sentences in corpus.values() for line in sentences]
    lines += [m["content"] for messages, _ in training_pairs() for m in messages]
    tok.train_from_iterator(lines, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.model_max_length = 4096
    fast.save_pretrained(out_dir)

    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=fast.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=fast.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    model = Qwen2ForCausalLM(config)
    if steps:
        loss = _train_to_answer_and_stop(model, fast, steps, seed)
        print(f"tiny model trained {steps} steps, final loss {loss:.3f}")
    model.save_pretrained(out_dir, safe_serialization=True)
    (out_dir / "generation_config.json").write_text(
        json.dumps({"eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id, "do_sample": False})
        + "\n"
    )
    (out_dir / MARKER).write_text(
        json.dumps({"built_by": "pipeline.serve.tiny_models", "recipe": recipe, "steps": steps}) + "\n"
    )
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, nargs="?")
    parser.add_argument("--steps", type=int, default=300, help="training steps (0: random weights only)")
    parser.add_argument("--ship", action="store_true", help=f"rebuild every shipped model in {SHIPPED}")
    args = parser.parse_args(argv)
    if args.ship:
        import shutil

        for name, steps in SHIPPED_MODELS.items():
            shutil.rmtree(SHIPPED / name, ignore_errors=True)
            print(build(SHIPPED / name, steps=steps, recipe=recipe_hash(steps)))
        return
    if args.out_dir is None:
        parser.error("give OUT_DIR or --ship")
    print(build(args.out_dir, steps=args.steps, recipe=recipe_hash(args.steps)))


if __name__ == "__main__":
    main()
