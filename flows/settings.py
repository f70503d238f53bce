"""The settings a translate run hands to each of its tasks (threads or Dask workers): servers, judges, sampling of
back-translations, and each language's translator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.quality.backtranslation import Judge
from pipeline.quality.embedding import EmbedJudge
from pipeline.translate import registry
from pipeline.translate.requests import Translators
from pipeline.translate.settings import TranslatorConfig


@dataclass
class TranslateSettings:
    server: str
    model: str
    adapter: str | None = None
    concurrency: int = 64
    batch_size: int = 64
    retry_seconds: float = 180.0
    request_timeout: float = 1800.0
    progress: bool = True
    bt_rate: float | None = None  # None: every turn unless the translator is known good (then a sample)
    judge_server: str | None = None  # back-translates (default: the translator's server and base model)
    judge_model: str | None = None
    embed_server: str | None = None  # the embedding judge (None: none)
    embed_model: str | None = None
    embed_prefix: str | None = None  # None: the model's own (pipeline.quality.embedding.PREFIXES)
    seed: int = 0
    qe_config: str | None = None
    weights: str | None = None
    commit_seconds: float = 2.0
    commit_age: float = 30.0
    # from a translators file: lang → {"translator": name, "server": URLs, "config": TranslatorConfig fields}
    lanes: dict[str, dict] = field(default_factory=dict)

    def server_for(self, lang: str) -> str:
        return self.lanes[lang]["server"] if lang in self.lanes else self.server

    def judge(self, lang: str) -> Judge:
        """Who back-translates ``lang``: ``judge_server`` with ``judge_model`` (its base model, named by the flow), else
        the language's translator's server and base model."""
        base = self.lanes[lang]["config"]["model"] if lang in self.lanes else self.model
        return Judge(self.judge_server or self.server_for(lang), self.judge_model or base)

    def embed_judge(self) -> EmbedJudge | None:
        """The embedding judge every turn goes to, if the run has one."""
        return EmbedJudge(self.embed_server, self.embed_model, self.embed_prefix) if self.embed_server else None

    def translator(self, lang: str | None = None) -> TranslatorConfig:
        """The base translator of ``lang`` (the translators file's, else the one ``--server`` serves; an adapter given
        on the command line applies to every language and wins over the registry)."""
        if lang in self.lanes:
            return TranslatorConfig(
                **{**self.lanes[lang]["config"], "prompts": tuple(map(tuple, self.lanes[lang]["config"]["prompts"]))}
            )
        return TranslatorConfig(model=self.model, adapter=self.adapter, weights=self.weights)

    def translators(self, workspace: Path, langs: list[str]) -> Translators:
        """Each language's translator: its base one with the language's active adapter and few-shot examples."""
        if self.adapter:
            return {lang: self.translator(lang) for lang in langs}
        entries = registry.active(workspace)
        return {lang: registry.config_for(self.translator(lang), entries.get(lang)) for lang in langs}
