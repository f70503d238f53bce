"""Quality estimation on professional translations (ntrex-dev), wrong-language cases, the project's own broken
outputs, and routing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest

import language_rules
from pipeline.quality.signals import Thresholds, assess, check_language, derive_length_bands, length_bands
from pipeline.references import NTREX_FILES, load_pairs
from pipeline.review.routing import _allocate, build_queue

from .conftest import REPO, SHARED_DATA

NTREX = SHARED_DATA / "ntrex-dev"


@pytest.mark.parametrize("lang", list(NTREX_FILES))
def test_language_id_and_acceptance_on_professional_text(lang):
    pairs = load_pairs(NTREX, lang)
    right = sum(1 for _, t in pairs if not check_language(t, lang)[0])
    accepted = sum(1 for s, t in pairs if assess(s, t, lang).status == "accepted")
    print(f"{lang}: language right {right / len(pairs):.2%}, accepted {accepted / len(pairs):.2%}")
    assert right >= 0.995 * len(pairs)
    assert accepted >= 0.98 * len(pairs)


@pytest.mark.parametrize(
    "real,expected",
    [
        ("hi", "ur"),
        ("ur", "ar"),
        ("zh", "ja"),
        ("es", "fr"),
        ("ru", "bn"),
        ("en", "zh"),
        ("en", "es"),
        ("en", "fr"),
        ("en", "ur"),
    ],
)
def test_wrong_language_is_flagged(real, expected):
    pairs = load_pairs(NTREX, real)
    flagged = sum(1 for s, t in pairs if assess(s, t, expected).status == "rejected")
    print(f"{real} given as {expected}: rejected {flagged / len(pairs):.2%}")
    assert flagged >= 0.99 * len(pairs)


@pytest.mark.parametrize("lang", [lang for lang in NTREX_FILES if lang != "en"])
def test_professional_references_are_almost_never_rejected(lang):
    """Every check, old and new, on ntrex-dev's professional references after the language's own rules (as
    the flow runs them): at most 0.5% of the lines rejected."""
    pairs = load_pairs(NTREX, lang)
    rejected = [
        (t, q.reasons)
        for s, t in pairs
        for q in [assess(s, language_rules.apply(t, lang).text, lang)]
        if q.status == "rejected"
    ]
    print(f"{lang}: rejected {len(rejected)}/{len(pairs)}", rejected[:3])
    assert len(rejected) <= 0.005 * len(pairs), rejected


@pytest.mark.parametrize("lang", [lang for lang in NTREX_FILES if lang != "en"])
def test_the_shipped_score_keeps_every_professional_reference_of_every_language(lang):
    """The guard on every ntrex-dev line (not only the calibration's), as ``polyglot qe score`` and a turn that is not
    back-translated get it: the form checks, the language's rules, then the shipped default calibration's form-only
    score. At most 0.5 % rejected, at most 5 % sent to review (the form-only model rejected 4.9 % of Chinese)."""
    from pipeline.quality.score import defaults
    from pipeline.quality.signals import QEConfig

    config, calibration = QEConfig(), defaults(lang)
    statuses = []
    for s, t in load_pairs(NTREX, lang):
        q = assess(s, language_rules.apply(t, lang).text, lang, th=config.for_lang(lang), bands=config.bands)
        status, reason = calibration.status(q.status, calibration.score(q, None, config.bands.get(lang)), False)
        assert not (status == "rejected" and reason), reason  # the form-only score never rejects on its own
        statuses.append(status)
    rejected, review = statuses.count("rejected") / len(statuses), statuses.count("needs_review") / len(statuses)
    print(f"{lang}: rejected {rejected:.1%}, to review {review:.1%}")
    assert rejected <= 0.005 and review <= 0.05, (rejected, review)


def test_a_reference_line_that_fails_the_form_checks_itself_is_left_out():
    """ntrex-dev's Spanish line 49 (1-based) is a lone "," for "I got bit!'": it set a threshold on its own."""
    from pipeline.quality.signals import QEConfig, degenerate_reference

    config = QEConfig()
    pairs = load_pairs(NTREX, "es")
    assert pairs[48][1].strip() == "," and "no letters" in degenerate_reference(*pairs[48], "es")
    dropped = [n for n, (s, t) in enumerate(pairs) if degenerate_reference(s, t, "es", bands=config.bands)]
    assert 48 in dropped and len(dropped) <= 0.01 * len(pairs), dropped
    assert degenerate_reference(pairs[1][0], pairs[1][1], "es") is None
    assert "identical to the source" in degenerate_reference(pairs[1][0], pairs[1][0], "es")


def test_an_unsure_language_detection_is_review_not_rejection():
    """Spanish with English names: fastText leans elsewhere with a low probability, langdetect says Spanish."""
    pairs = load_pairs(NTREX, "es")
    unsure = [(s, t) for s, t in pairs if check_language(t, "es")[1]]
    assert unsure, "expected some disputed detections among the Spanish references"
    for s, t in unsure:
        q = assess(s, t, "es")
        assert q.status != "rejected" and any("uncertain language" in r for r in q.reasons), q.reasons
    th = Thresholds(min_wrong_language_prob=0.0)  # the same lines with a detector trusted blindly
    assert check_language("El presidente Donald Trump dijo: «Great job».", "es", th)[0] == []


def test_portuguese_is_not_accepted_as_spanish():
    q = assess(
        "Historically, the old people I spoke with said the town had a church on every corner.",
        "Historicamente, as pessoas idosas com quem conversei disseram que a cidade tinha uma igreja em cada esquina.",
        "es",
    )
    assert q.status == "rejected" and q.reasons == ["wrong language: detected pt (0.99)"]


@pytest.mark.parametrize(
    "text,reason",
    [
        ("یہ ایک بلی ہے جو 猫 کی طرح 坐着 ہے۔", "mixed script"),  # Chinese words inside Urdu
        ("هذه قطة 一只猫 تجلس على الطاولة الخشبية في المطبخ.", "mixed script"),  # inside Arabic
        ("این یک گربه است که روی میز نشسته است و به ما نگاه می کند.", "Persian"),  # Persian where Urdu is wanted
        ("هذه قطة بيضاء تجلس على الطاولة الخشبية في المطبخ الكبير.", "wrong language"),  # Arabic where Urdu is wanted
    ],
)
def test_a_neighbouring_language_is_not_accepted_as_urdu_or_arabic(text, reason):
    lang = "ar" if "قطة" in text and "一只" in text else "ur"
    q = assess("A cat sits on the wooden table in the kitchen.", language_rules.apply(text, lang).text, lang)
    assert q.status == "rejected" and any(reason in r for r in q.reasons), q.reasons


def test_english_source_copied_is_rejected():
    pairs = load_pairs(NTREX, "en")
    rejected = sum(1 for s, _ in pairs if assess(s, s, "hi").status == "rejected")
    assert rejected >= 0.99 * len(pairs)


SRC = "The brown dog at [0.22, 0.51, 0.47, 0.88] is jumping to catch the frisbee in the park."
GOOD_FR = "Le chien brun en [0.22, 0.51, 0.47, 0.88] saute pour attraper le frisbee dans le parc."


@pytest.mark.parametrize(
    "target,finish,flags,reason",
    [
        (GOOD_FR[:30], "length", [], "truncated"),
        ("", "stop", [], "empty"),
        ("   ", "stop", [], "empty"),
        ("I'm sorry, but I cannot translate this text.", "stop", [], "refusal"),
        ("Le chien brun saute pour attraper le frisbee dans le parc.", "stop", [], "protected spans differ"),
        (
            "Le chien brun en [0.22, 0.51] saute pour attraper le frisbee dans le parc.",
            "stop",
            [],
            "protected spans differ",
        ),
        (GOOD_FR, "stop", ["unit 0: placeholder 0 missing"], "placeholder 0 missing"),
        (SRC, "stop", [], "untranslated"),
    ],
)
def test_broken_outputs_are_rejected_every_time(target, finish, flags, reason):
    q = assess(SRC, target, "fr", finish_reason=finish, flags=flags)
    assert q.status == "rejected" and any(reason in r for r in q.reasons), q.reasons


def test_good_translation_accepted_and_doubtful_ones_reviewed():
    assert assess(SRC, GOOD_FR, "fr").status == "accepted"
    long = GOOD_FR + " " + "Il fait beau et le chien est content de jouer avec son maître dans le parc. " * 3
    q = assess(SRC, long, "fr")
    assert q.status == "needs_review" and any("length ratio" in r for r in q.reasons)
    rep = assess(SRC, "Le chien le chien le chien le chien le chien le chien [0.22, 0.51, 0.47, 0.88] saute.", "fr")
    assert "repetition" in rep.reasons
    assert assess(SRC, GOOD_FR, "fr", flags=["rules: register: informal address"]).status == "needs_review"


def test_shipped_length_bands_are_derived_from_ntrex():
    assert length_bands() == derive_length_bands(NTREX)


def _fake_shards(ws, lang, statuses, files, scores):
    rows = []
    for i, (status, source, score) in enumerate(zip(statuses, files, scores)):
        rows.append(
            {
                "lang": lang,
                "conv_key": f"k{i:04d}",
                "id": str(i),
                "source_file": source,
                "qe_status": status,
                "qe_score": score,
                "turn_qe_status": [status],
                "turn_qe_reasons": [[]],
                "turn_length_ratio": [1.0],
                "turn_script_share": [1.0],
                "turn_lang_prob": [0.9],
                "turn_qe_score": [score],
                "turn_bt_chrf": [None],
            }
        )
    path = ws / "translations" / lang / "shard-00000.parquet"
    path.parent.mkdir(parents=True)
    pl.DataFrame(rows, schema_overrides={"turn_bt_chrf": pl.List(pl.Float32)}).write_parquet(path)


def test_routing_takes_the_lowest_scores_first_keeps_a_seeded_spot_check_and_skips_reviewed(tmp_path):
    """Budget 30: 27 conversations with the lowest scores (rejected ones are not for correcting; with no share for
    translating from scratch they are not queued), 3 drawn at random from the accepted ones left (stratified by
    source file) to audit the score."""
    statuses = ["accepted"] * 300 + ["needs_review"] * 7 + ["rejected"] * 5
    files = ["detail.json"] * 100 + ["conv.json"] * 200 + ["x.json"] * 12
    scores = [0.5 + 0.5 * ((i * 37) % 300) / 300 for i in range(300)] + [0.3 + i / 100 for i in range(7)] + [0.05] * 5
    for lang in ("hi", "ur"):
        _fake_shards(tmp_path, lang, statuses, files, scores)
    a = build_queue(tmp_path, ["hi", "ur"], budget=30, seed=7, scratch_share=0)
    b = build_queue(tmp_path, ["hi", "ur"], budget=30, seed=7, scratch_share=0)
    c = build_queue(tmp_path, ["hi", "ur"], budget=300, seed=8, spot_check=0.5, scratch_share=0)
    assert a.equals(b)
    for lang in ("hi", "ur"):
        q = a.filter(pl.col("lang") == lang)
        low, spot = q.filter(pl.col("reason") == "low score"), q.filter(pl.col("reason") == "spot check")
        assert (low.height, spot.height) == (27, 3) and q["conv_key"].n_unique() == 30
        candidates = sorted(s for s, st in zip(scores, statuses) if st != "rejected")
        assert sorted(low["qe_score"].to_list()) == pytest.approx(candidates[:27])  # the lowest first
        assert low["qe_score"].to_list()[:7] == sorted(low["qe_score"].to_list())[:7]  # needs_review (0.30-0.36) lead
        assert spot["qe_score"].min() >= max(low["qe_score"])  # drawn from what the low-score side left
        wide = c.filter((pl.col("lang") == lang) & (pl.col("reason") == "spot check"))
        assert wide.group_by("stratum").len().sort("stratum")["len"].to_list() == [100, 50]  # conv, detail: 2:1
    # another draw
    assert not build_queue(tmp_path, ["hi"], budget=30, seed=8, scratch_share=0).equals(
        a.filter(pl.col("lang") == "hi")
    )
    reviewed = a.filter(pl.col("lang") == "hi").select("lang", "conv_key")
    (tmp_path / "review").mkdir()
    reviewed.write_parquet(tmp_path / "review" / "reviewed.parquet")
    again = build_queue(tmp_path, ["hi"], budget=30, seed=7, scratch_share=0)
    assert again.join(reviewed, on=["lang", "conv_key"]).height == 0 and again.height == 30  # nothing reviewed twice


def test_a_share_of_the_budget_goes_to_rejected_conversations_to_be_translated_from_scratch(tmp_path):
    """hi has 40 rejected conversations: 20 % of its budget of 20 goes to 4 of them, drawn with the seed, the
    rest as before; ur has 2 rejected (both queued, the rest of the budget as before); es none (nothing taken)."""
    n = {"hi": 40, "ur": 2, "es": 0}
    for lang, rejected in n.items():
        statuses = ["accepted"] * 50 + ["needs_review"] * 10 + ["rejected"] * rejected
        scores = [0.9 - i / 1000 for i in range(50)] + [0.4] * 10 + [0.05] * rejected
        _fake_shards(tmp_path, lang, statuses, ["a.json"] * len(statuses), scores)
    q = build_queue(tmp_path, list(n), budget=20, seed=3)
    status = {f"k{i:04d}": st for i, st in enumerate(["accepted"] * 50 + ["needs_review"] * 10 + ["rejected"] * 40)}
    for lang, want in (("hi", 4), ("ur", 2), ("es", 0)):
        mine = q.filter(pl.col("lang") == lang)
        scratch = mine.filter(pl.col("reason") == "from scratch")
        assert scratch.height == want and mine.height == 20 and mine["conv_key"].n_unique() == 20, mine
        assert all(status[k] == "rejected" for k in scratch["conv_key"])
        assert all(status[k] != "rejected" for k in mine.filter(pl.col("reason") != "from scratch")["conv_key"])
    assert q.equals(build_queue(tmp_path, list(n), budget=20, seed=3))  # same seed, same draw
    assert not q.filter(pl.col("reason") == "from scratch").equals(
        build_queue(tmp_path, list(n), budget=20, seed=4).filter(pl.col("reason") == "from scratch")
    )
    assert (
        not build_queue(tmp_path, ["hi"], budget=20, seed=3, scratch_share=0)
        .filter(pl.col("reason") == "from scratch")
        .height
    )
    # people saw those four: the next queue draws four others
    (tmp_path / "review").mkdir()
    q.filter(pl.col("lang") == "hi").select("lang", "conv_key").write_parquet(tmp_path / "review" / "reviewed.parquet")
    again = build_queue(tmp_path, ["hi"], budget=20, seed=3).filter(pl.col("reason") == "from scratch")
    assert again.height == 4 and not set(again["conv_key"]) & set(q.filter(pl.col("lang") == "hi")["conv_key"])
    with pytest.raises(ValueError, match="from-scratch share"):
        build_queue(tmp_path, ["hi"], budget=20, scratch_share=1.5)


def test_allocate_keeps_total_and_sizes():
    assert _allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}
    assert sum(_allocate({"a": 5, "b": 3}, 8).values()) == 8


def test_cli_langid_and_qe(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "langid"],
        input="Bonjour tout le monde, comment allez-vous ?\nЭто тест.\n",
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    ).stdout.split()
    assert out == ["fr", "ru"]
    (tmp_path / "s.txt").write_text(SRC + "\n" + SRC + "\n")
    (tmp_path / "t.txt").write_text(GOOD_FR + "\n\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "qe",
            "score",
            "--lang",
            "fr",
            "--source",
            str(tmp_path / "s.txt"),
            "--target",
            str(tmp_path / "t.txt"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["status"] for r in rows] == ["accepted", "rejected"]
    assert "accepted 1 (50.0%)" in proc.stderr


def test_thresholds_per_language_from_a_config_file(tmp_path):
    from pipeline.quality.signals import QEConfig

    path = tmp_path / "qe.json"
    path.write_text(
        json.dumps(
            {
                "default": {"min_script_share": 0.6},
                "languages": {"fr": {"min_length_chars": 500}},
                "length_bands": {"fr": [0.1, 0.2]},
            }
        )
    )
    cfg = QEConfig.load(path)
    assert cfg.for_lang("hi").min_script_share == 0.6 and cfg.for_lang("fr").min_length_chars == 500
    long = GOOD_FR + " " + "Il fait beau et le chien est content de jouer avec son maître dans le parc. " * 3
    assert assess(SRC, long, "fr", th=cfg.for_lang("fr"), bands=cfg.bands).status == "accepted"  # ratio not judged
    assert (
        assess(SRC, long, "es", th=cfg.for_lang("es"), bands=cfg.bands).status == "rejected"
    )  # French given as Spanish
    for bad, message in (
        ({"default": {"min_scrpt_share": 1}}, "unknown setting"),
        ({"languages": {"hi": {"min_letters": -1}}}, "must be a number"),
        ({"length_bands": {"hi": [2, 1]}}, "low < high"),
        ({"x": 1}, "expected an object"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            QEConfig.load(path)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "qe",
            "score",
            "--lang",
            "fr",
            "--source",
            "s",
            "--target",
            "t",
            "--qe-config",
            str(path),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2 and "expected an object" in proc.stderr


def test_language_detection_is_the_same_in_parallel_threads_of_a_fresh_process():
    """Shard tasks run in threads; the first language checks of a run happen at the same moment. langdetect's
    lazy loading answered None or a wrong language to all but one of them, so a rerun could differ."""
    script = (
        "import threading\n"
        "from pipeline.quality.signals import _langdetect\n"
        "barrier = threading.Barrier(8)\n"
        "out = []\n"
        "def go():\n"
        "    barrier.wait()\n"
        "    out.append(_langdetect('El perro corre por el parque con una pelota roja.'))\n"
        "threads = [threading.Thread(target=go) for _ in range(8)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "print(','.join(map(str, out)))\n"
    )
    for _ in range(3):
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
        assert proc.stdout.strip() == ",".join(["es"] * 8), proc.stdout


def test_language_id_loads_the_bundled_lite_model_through_fast_langdetects_public_configuration(tmp_path):
    """No private path into the package and nothing downloaded: in a process whose every connection fails (a proxy
    that does not exist, an empty cache folder), language ID still answers with the model the wheel carries."""
    code = (
        "from pipeline.quality.signals import _detector, identify\n"
        "config = _detector().config\n"
        "assert (config.model, config.normalize_input, config.max_input_length) == ('lite', False, None)\n"
        "print(identify('Le chat dort sur le canapé.')[0], identify('这是一个测试句子。')[0], identify('A' * 200 + ' é')[0] != '')\n"
    )
    env = {
        **os.environ,
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "FTLANG_CACHE": str(tmp_path),
        "HOME": str(tmp_path),
    }
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.split() == ["fr", "zh", "True"], proc.stdout + proc.stderr[-2000:]


def test_a_missing_or_broken_calibration_falls_back_to_the_defaults_and_says_why_in_one_line(tmp_path):
    """(A translate run says it once, for all its languages, before assembling (:func:`notices`); tests/test_scale.py
    counts it with two worker processes.)"""
    from pipeline.quality import score as qscore

    said: list[str] = []
    first = qscore.load(tmp_path, "hi", "tv-missing", said.append)
    assert first.source == "defaults" and len(said) == 1 and "hi" in said[0] and "qe calibrate" in said[0]
    path = qscore.calibration_path(tmp_path, "ur", "tv-broken")
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    broken = qscore.load(tmp_path, "ur", "tv-broken", said.append)
    assert broken.source == "defaults" and len(said) == 2 and str(path) in said[1] and "cannot be read" in said[1]
    good = qscore.defaults("es")
    good.source, good.translator_version = "calibrated", "tv-good"
    qscore.calibration_path(tmp_path, "es", "tv-good").parent.mkdir(parents=True)
    qscore.calibration_path(tmp_path, "es", "tv-good").write_text(good.to_json())
    assert qscore.load(tmp_path, "es", "tv-good", said.append) == good and len(said) == 2
    # what a run over several languages says: one line for those without a calibration, one per unreadable file
    lines = qscore.notices(tmp_path, {"hi": "tv-missing", "ur": "tv-broken", "es": "tv-good", "bn": "tv-missing"})
    assert len(lines) == 2 and lines[0].startswith("quality score for hi, bn: the shipped default calibration")
    assert "their translators" in lines[0] and lines[1] == said[1]
    assert qscore.notices(tmp_path, {"es": "tv-good"}) == []


def test_status_comes_from_the_form_checks_and_the_score():
    from pipeline.quality.score import defaults

    c = defaults("es")
    assert c.form_accept == c.form_accept_by_lang["es"] != c.form_accept_from  # the defaults' own for es
    c.reject_below, c.accept_from, c.form_accept_from, c.form_accept_by_lang = 0.3, 0.7, 0.4, {}
    assert c.status("rejected", 0.99, True) == ("rejected", None)  # a broken placeholder: whatever the score
    assert c.status("accepted", 0.1, True)[0] == "rejected" and "0.10 below 0.30" in c.status("accepted", 0.1, True)[1]
    assert c.status("accepted", 0.5, True)[0] == "needs_review"
    assert c.status("accepted", 0.9, True) == ("accepted", None)
    assert c.status("needs_review", 0.9, True) == ("needs_review", None)
    # the form signals alone never reject: they send to review below their own threshold
    assert c.status("accepted", 0.1, False) == ("needs_review", "quality score 0.10 below 0.40 (form only)")
    assert c.status("accepted", 0.5, False) == ("accepted", None)
    assert c.status("rejected", 0.9, False) == ("rejected", None)
    # a calibration written before the form threshold existed uses accept_from for both
    c.form_accept_from = None
    assert c.status("accepted", 0.5, False)[0] == "needs_review"


def test_only_a_meaning_signal_rejects_a_turn_the_form_merely_doubts():
    """A model with the back-translation that weighs the language ID's probability heavily (as the fresh Hindi
    calibration of the recorded answers does) scores a faithful round trip of an unsure language ID below
    ``reject_below``: the turn goes to review, not rejection; a round trip that fails on its own still rejects."""
    from pipeline.quality.score import Logistic, TurnQE, defaults

    c = defaults("hi")
    c.with_meaning = Logistic(
        ["bt_chrf", "lang_prob", "repetition"], [3.0, 3.0, -1.0], 0.0, [0.4, 0.95, 0.0], [0.1, 0.05, 1.0]
    )
    c.reject_below, c.accept_from = 0.3, 0.6
    band = [0.5, 2.0]
    unsure = TurnQE("hi", 0.7, 1.0, 1.0, "accepted", [])
    sure = TurnQE("hi", 0.99, 1.0, 1.0, "accepted", [])
    score, status, reason = c.verdict(unsure, 55.0, band)
    assert score < 0.3 and status == "needs_review"
    assert (
        reason.startswith(f"quality score {score:.2f} below 0.30") and "its meaning alone would not reject it" in reason
    )
    assert c.verdict(unsure, 10.0, band)[1] == "rejected"  # the round trip itself fails
    assert c.verdict(sure, 10.0, band)[1] == "rejected" and c.verdict(sure, 55.0, band)[1] == "accepted"
    assert c.verdict(TurnQE("hi", 0.7, 1.0, 1.0, "rejected", ["empty"]), 90.0, band)[1] == "rejected"  # a hard failure


def test_a_turn_scored_by_its_back_translation_still_goes_to_review_where_its_form_alone_would():
    """An omission keeps most of a line's meaning: its round trip can score well while its length is far outside
    the language's band. Whatever meaning signal scores a turn, the form signals still send it to review where they
    alone would (the judge path caught 69 % of the challenge set's omissions without this, 90 % with it)."""
    from pipeline.quality.score import TurnQE, defaults, turn_features

    c = defaults("es")
    band = [0.8, 1.3]
    whole = TurnQE("es", 0.99, 1.0, 1.0, "accepted", [])
    cut = TurnQE("es", 0.99, 1.0, 0.45, "accepted", [])
    form = c.form_only.probability(turn_features(cut, None, band))
    assert form < c.form_accept <= c.form_only.probability(turn_features(whole, None, band))
    assert c.verdict(whole, 70.0, band)[1] == "accepted"
    score, status, reason = c.verdict(cut, 70.0, band)
    assert score >= c.accept_from and status == "needs_review"
    assert reason == f"quality score {form:.2f} below {c.form_accept:.2f} (form only)"
    # with the cosine too, and never rejected for it
    assert c.verdict(whole, 70.0, band, 0.9)[1] == "accepted" and c.verdict(cut, 70.0, band, 0.9)[1] == "needs_review"
    assert c.verdict(cut, None, band)[1] == "needs_review"  # the form path's own verdict agrees


@pytest.mark.parametrize(
    "lang,target",
    [
        ("hi", "तस्वीर में ३ लोग हैं और 2 कुत्ते।"),  # Devanagari digits
        ("bn", "ছবিতে ৩ জন মানুষ এবং ২টি কুকুর আছে।"),  # Bengali digits
        ("ar", "في الصورة ٣ أشخاص و٢ كلاب."),  # Arabic-Indic digits
        ("ur", "تصویر میں ۳ لوگ اور ۲ کتے ہیں۔"),  # Extended Arabic-Indic digits
        ("ja", "写真には３人と２匹の犬がいます。"),  # full-width digits
        ("zh", "图中有3个人和两只狗。"),  # a CJK numeral for one count
        ("es", "Hay tres personas y 2 perros en la foto."),  # the target's own words for a small count
    ],
)
def test_the_number_check_reads_every_script_and_counts_written_as_words(lang, target):
    from pipeline.quality.numbers import number_mismatch

    source = "There are 3 people and 2 dogs in the picture."
    assert number_mismatch(source, target, lang) is None
    changed = target.translate(str.maketrans("3३৩٣۳３三", "4४৪٤۴４四")).replace("tres", "4")
    assert changed != target
    why = number_mismatch(source, changed, lang)
    assert why and "3 of the source missing" in why and "4 not in the source" in why, why
    q = assess(source, changed, lang)
    assert q.status == "needs_review" and why in q.reasons  # review, with the numbers in the reason


def test_the_number_check_knows_decimal_marks_scales_and_clock_times():
    from pipeline.quality.numbers import number_mismatch

    assert number_mismatch("It costs 1,250.5 dollars.", "Cuesta 1.250,5 dólares.", "es") is None
    assert number_mismatch("It costs 1,250.5 dollars.", "Cuesta 1.250,7 dólares.", "es")
    assert (
        number_mismatch("The box [0.37, 0.584, 0.504, 0.709] holds it.", "La caja [0.37, 0.584, 0.504, 0.709].", "fr")
        is None
    )
    assert number_mismatch("A £2.8bn market.", "Un mercado de 2800 millones de libras.", "es") is None
    assert number_mismatch("About 5 million people.", "约500万人。", "zh") is None
    assert number_mismatch("At 3 p.m. on Monday.", "Le lundi à 15 h.", "fr") is None
    assert number_mismatch("Up to 10 inches of rain.", "Hasta 25 centímetros de lluvia.", "es") is None
    assert number_mismatch("three people", "tres personas", "es") is None
    assert number_mismatch("There are 3 people and 12 dogs.", "有三个人和十二只狗。", "zh") is None
    assert number_mismatch("There is one dog.", "Hay 1 perro.", "es") is None  # a word may become a digit


def test_the_number_check_sees_counts_written_as_words_months_and_converted_units_change():
    from pipeline.quality.numbers import number_mismatch

    # a count or a month the source writes as a word, changed in the translation
    assert number_mismatch("Six people were arrested.", "6人が逮捕された。", "ja") is None
    assert "6 of the source missing" in (number_mismatch("Six people were arrested.", "9人が逮捕された。", "ja") or "")
    assert number_mismatch("In June the report came out.", "6月に報告書が出た。", "ja") is None
    assert number_mismatch("In June the report came out.", "7月に報告書が出た。", "ja")
    # an imperial number converted (rounded as a translator does) passes; converted wrongly, it does not
    assert number_mismatch("The 550 pound hog.", "El cerdo de casi 250 kilos.", "es") is None
    assert number_mismatch("Winds of 85 mph, 385 miles away.", "Vientos de 137 km/h, a 620 km.", "es") is None
    assert number_mismatch("A two-foot wide brim.", "Un ala de 60 cm.", "es") is None
    assert number_mismatch("The 550 pound hog.", "El cerdo de casi 350 kilos.", "es")
    assert number_mismatch("2 to 4 inches of rain.", "De 5 a 10 cm de lluvia.", "fr") is None
    assert number_mismatch("2 to 4 inches of rain.", "De 5 a 20 cm de lluvia.", "fr")
    # a metric number the source writes beside its imperial one is kept as written
    assert number_mismatch("At 800 kph (497 mph).", "A 801 km/h.", "es")
    # each number of the translation stands for one number of the source: the 2 of "two vans" is not the hour's
    assert (
        number_mismatch("At 2pm two police vans came.", "À 14 h, deux fourgons de police sont arrivés.", "fr") is None
    )
    assert number_mismatch("At 2pm two police vans came.", "À 15 h, deux fourgons de police sont arrivés.", "fr")


PHONE = "Call 101 or Crimestoppers on 0800 555 111 quoting log 247."


@pytest.mark.parametrize(
    "source,target,lang,changed",
    [
        # a number written twice for two different ones of the source is one of them changed
        ("1 to 4 inches of rain.", "4 से 4 इंच बारिश।", "hi", True),
        ("Three months after the June summit.", "6月の会議から3ヶ月後。", "ja", False),
        ("Three months after the June summit.", "6月の会議から6ヶ月後。", "ja", True),
        # a number kept in its imperial unit is kept exactly; a converted one within the rounding its digits show
        ("It was 385 miles away.", "它位于386英里处。", "zh", True),
        ("The 550 pound hog.", "Le porc de 251 kg.", "fr", True),
        ("Winds of 85 mph.", "Vents de 135 km/h.", "fr", False),
        ("Over half an inch of rain.", "Plus de 1,3 cm de pluie.", "fr", False),
        ("Over half an inch of rain.", "Plus de 8,3 cm de pluie.", "fr", True),
        # May before or after a day is a month; scaled numbers are exact in every notation
        ("On May 30, 2005 in Xining.", "2005年5月30日，西宁。", "zh", False),
        ("On May 30, 2005 in Xining.", "2005年12月30日，西宁。", "zh", True),
        ("More than 20 million people.", "超过 2010 万人。", "zh", True),
        ("It sold for £125m three years ago.", "3年前に1億2,500万ポンドで売却した。", "ja", False),
        ("The 1950-53 Korea War.", "La guerre de Corée (1950-1953).", "fr", False),
        ("Up to 3,000 products.", "Jusqu’à 3 1 articles.", "fr", True),
        # the 80s are a range: of years, or of degrees Fahrenheit a translator may give in Celsius
        ("A warm October with widespread 80s.", "Un octobre chaud, autour de 26 degrés.", "fr", False),
        ("A warm October with widespread 80s.", "十月份温度会普遍达到90华氏度。", "zh", True),
        # a phone number is kept group for group, in any order (right to left: 111 555 0800)
        (PHONE, "اتصل على 101 أو على الرقم 111 555 0800 مع ذكر السجل 247.", "ar", False),
        (PHONE, "Appelez le 101 ou le 0800 557 111 en citant le journal 247.", "fr", True),
        # an article before a unit of time or distance is a count of one; ordinals from "second" on are counts
        ("His body was found about an hour later.", "大约1个小时后发现其尸首。", "zh", False),
        ("His body was found about an hour later.", "大约3个小时后发现其尸首。", "zh", True),
        ("His body was found about an hour later.", "遺体は一時間後に発見された。", "ja", False),
        ("About a mile away, at 4pm.", "Environ 1,6 km plus loin, à 16 h.", "fr", False),
        ("About a mile away, at 4pm.", "Environ 5 km plus loin, à 16 h.", "fr", True),
        ("He swam for half an hour.", "Il a nagé 30 minutes.", "fr", False),
        ("It lasted an hour and a half.", "持续了1.5小时。", "zh", False),
        ("At 60 miles an hour.", "時速97キロで。", "ja", False),
        ("Both want a second summit.", "両者は2度目の首脳会談を望んでいる。", "ja", False),
        ("Both want a second summit.", "両者は9度目の首脳会談を望んでいる。", "ja", True),
        ("Rangers drop down to sixth spot.", "レンジャーズは8位に落ちた。", "ja", True),
    ],
)
def test_the_number_check_on_repeats_units_dates_scales_ranges_and_phone_numbers(source, target, lang, changed):
    from pipeline.quality.numbers import number_mismatch

    assert (number_mismatch(source, target, lang) is not None) == changed


@pytest.mark.parametrize("lang", [lang for lang in NTREX_FILES if lang != "en"])
def test_the_number_check_rarely_flags_a_professional_reference(lang):
    """News references translate freely (units converted, times in 24 hours, "100 percent" as "entirely"): at most
    1 % of every ntrex-dev line flagged."""
    from pipeline.quality.numbers import number_mismatch

    pairs = load_pairs(NTREX, lang)
    flagged = [
        (n, why)
        for n, (s, t) in enumerate(pairs)
        if (why := number_mismatch(s, language_rules.apply(t, lang).text, lang))
    ]
    print(f"{lang}: {len(flagged)} of {len(pairs)} flagged", flagged[:3])
    assert len(flagged) <= 0.01 * len(pairs), flagged


def test_a_turn_whose_judge_answered_a_remark_is_scored_without_it_and_goes_to_review(tmp_path):
    """Assembling a shard (one function; the judge replaced by its two answers): the turn whose back-translation is a
    remark about the task keeps the remark on record, gets no bt-chrF and goes to review with the reason; the other
    turn's back-translation is scored as ever."""
    import polars as pl

    from pipeline.assemble.translations import assemble_shard
    from pipeline.ingest.shards import shard_dirs
    from pipeline.ingest.tables import ingest
    from pipeline.quality.score import JUDGE_REMARK_REASON, defaults
    from pipeline.translate.memory import Entry
    from pipeline.translate.requests import LanguageCounts

    source = tmp_path / "in.json"
    turns = ["What is on the wooden table in the kitchen?", "There is a white cup on the wooden table in the kitchen."]
    spanish = [
        "¿Qué hay sobre la mesa de madera de la cocina?",
        "Hay una taza blanca sobre la mesa de madera de la cocina.",
    ]
    source.write_text(
        json.dumps([{"id": "c0", "conversations": [{"from": f, "value": v} for f, v in zip(("human", "gpt"), turns)]}])
    )
    ingest([source], tmp_path / "ws")
    shard = shard_dirs(tmp_path / "ws" / "ingest")[0]
    hashes = pl.read_parquet(shard / "units.parquet").sort("turn_index")["unit_hash"].to_list()
    entries = {h: Entry(h, "es", "tv", "ok", text, text) for h, text in zip(hashes, spanish)}
    remark = "I will translate the given text into English faithfully and completely. Please provide the text."
    answers = {spanish[0]: remark, spanish[1]: turns[1]}
    asked = []

    def backtranslate(items):
        asked.extend(items)
        return [answers[text] for _, text in items]

    out = tmp_path / "es.parquet"
    assemble_shard(
        shard, "es", out, entries, "tv", "{}", LanguageCounts(), backtranslate, 1.0, calibration=defaults("es")
    )
    row = pl.read_parquet(out).row(0, named=True)
    assert len(asked) == 2 and row["turn_back_translation"] == [remark, turns[1]]
    assert row["turn_bt_chrf"][0] is None and row["turn_bt_chrf"][1] == 100.0
    assert row["turn_qe_status"] == ["needs_review", "accepted"]
    assert row["turn_qe_reasons"][0] == [JUDGE_REMARK_REASON] and row["turn_qe_reasons"][1] == []
