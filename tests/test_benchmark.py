"""PALO's multilingual benchmark against the real servers: an evaluation set in the LLaVA-Bench layout (written
here) translated in full, every item queued for review, the labeling pages showing the image and rendering
every script with the fonts Label Studio serves (headless Chromium), a correction pulled back, and the release
in the layout evaluators read."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import polars as pl
import pytest
from label_studio_sdk import LabelStudio

from annotation.assets import ImageRoot, served_family
from pipeline.review import corrections

from .conftest import admin_page, polyglot

LANGS = ["ur", "ar", "hi", "bn", "zh", "ja"]
SAMPLE = {  # text in each script, to render with the served font
    "ur": "یہ ایک میز ہے اور اس پر تین پلیٹیں ہیں۔",
    "ar": "هذه طاولة وعليها ثلاثة أطباق.",
    "hi": "यह एक मेज़ है और उस पर तीन प्लेटें हैं।",
    "bn": "এটি একটি টেবিল এবং এর উপর তিনটি প্লেট আছে।",
    "zh": "这是一张桌子，上面有三个盘子。",
    "ja": "これはテーブルで、皿が三枚あります。",
}
FIX = "یہ ایک لکڑی کی میز ہے۔"


def png(width: int, height: int) -> bytes:
    """A small picture (red, green and blue bands), made here."""
    band = lambda x: (200, 40, 40) if x < width // 3 else (40, 160, 60) if x < 2 * width // 3 else (40, 60, 200)  # noqa: E731
    row = b"\x00" + b"".join(bytes(band(x)) for x in range(width))
    rows = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def bench_set(tmp_path_factory) -> dict:
    """A LLaVA-Bench-shaped set: 4 questions (3 categories) over 2 images, one of which is not in the image folder."""
    root = tmp_path_factory.mktemp("llava-bench")
    images = root / "images"
    images.mkdir()
    (images / "001.png").write_bytes(png(320, 200))
    questions = [
        {"question_id": 0, "image": "001.png", "text": "What is on the table?", "category": "conv"},
        {
            "question_id": 1,
            "image": "001.png",
            "text": "Describe the colours of the picture in detail.",
            "category": "detail",
        },
        {"question_id": 2, "image": "002.png", "text": "Why might the plates be stacked?", "category": "complex"},
        {"question_id": 3, "image": "002.png", "text": "How many plates are there?", "category": "conv"},
    ]
    answers = [
        {
            "question_id": q["question_id"],
            "answer_id": f"a{q['question_id']}",
            "model_id": "gpt-4-0314",
            "text": f"There are three plates on the wooden table in picture {q['question_id']}.",
            "metadata": {},
        }
        for q in questions
    ]
    context = [
        {"id": "001", "image": "001.png", "caption": "Three bands of colour: red, green and blue."},
        {"id": "002", "image": "002.png", "caption": "A stack of white plates on a wooden table."},
    ]
    for name, rows in (("questions.jsonl", questions), ("answers_gpt4.jsonl", answers), ("context.jsonl", context)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": root, "images": images, "questions": questions, "answers": answers, "context": context}


@pytest.fixture(scope="module")
def ws(bench_set, vllm_server, labelstudio_server, tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("bench-ws")
    root = bench_set["root"]
    proc = polyglot(
        "benchmark",
        "translate",
        str(root / "questions.jsonl"),
        "--answers",
        str(root / "answers_gpt4.jsonl"),
        "--context",
        str(root / "context.jsonl"),
        "--workspace",
        str(workspace),
        "--langs",
        ",".join(LANGS),
        "--server",
        vllm_server.url,
        "--no-progress",
        "--bt-rate",
        "0",
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "evaluation set: 4 questions, 4 reference answers, 2 captions" in proc.stdout
    return workspace


def test_every_item_is_translated_and_queued_for_review(ws):
    queue = pl.read_parquet(ws / "review" / "queue.parquet")
    for lang in LANGS:
        shards = pl.read_parquet(ws / "translations" / lang / "*.parquet")
        assert shards.height == 6  # 4 questions (with their answers) + 2 captions, whatever QE said of them
        assert set(queue.filter(pl.col("lang") == lang)["conv_key"]) == set(shards["conv_key"])
    assert set(queue["reason"]) == {"every item"}


def test_review_pages_show_the_image_and_render_every_script_with_the_served_fonts(
    ws, bench_set, labelstudio_server, tmp_path
):
    proc = polyglot(
        "review",
        "push",
        "--workspace",
        str(ws),
        "--langs",
        ",".join(LANGS),
        "--overlap",
        "0",
        "--project-prefix",
        "benchmark-test",
        "--image-root",
        str(bench_set["images"]),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    admin = LabelStudio(base_url=labelstudio_server.url, api_key=os.environ["LABEL_STUDIO_API_KEY"])
    projects = json.loads((ws / "review" / "projects.json").read_text())
    tasks = {
        lang: sorted(admin.tasks.list(project=projects[lang], fields="all", page_size=1000), key=lambda t: t.id)
        for lang in LANGS
    }
    url = labelstudio_server.url
    with admin_page(url, height=1100) as page:
        for lang in LANGS:
            with_image = next(t for t in tasks[lang] if t.data["image_note"] == "image 001.png")
            page.goto(f"{url}/projects/{projects[lang]}/data?task={with_image.id}")
            page.locator(".pg-target").first.wait_for(timeout=60_000)
            img = page.locator("img[src*='local-files']").first
            img.wait_for(timeout=60_000)
            page.wait_for_function("e => e.complete && e.naturalWidth > 0", arg=img.element_handle(), timeout=60_000)
            assert img.evaluate("e => [e.naturalWidth, e.naturalHeight]") == [
                320,
                200,
            ]  # the picture itself, not a broken one
            family = served_family(lang)
            faces = page.evaluate(
                "async ([family, text]) => { const faces = await document.fonts.load(`18px '${family}'`, text);"
                " return [faces.length, document.fonts.check(`18px '${family}'`, text)]; }",
                [family, SAMPLE[lang]],
            )
            assert faces[0] >= 1 and faces[1] is True, (lang, faces)  # the served faces covering this script loaded
            target_font = page.locator(".pg-target").first.evaluate("e => getComputedStyle(e).fontFamily")
            assert target_font.startswith(f'"{family}"'), target_font
            # glyphs, not boxes: the sample drawn with the served font differs from the browser's own fallback
            drawn = page.evaluate(
                "([family, text]) => { const draw = font => { const c = document.createElement('canvas'); c.width = 700; c.height = 60;"
                " const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, 700, 60); g.fillStyle = '#000';"
                " g.font = font; g.fillText(text, 10, 40); return c.toDataURL(); };"
                " return [draw(`28px '${family}'`), draw(`28px monospace`)]; }",
                [family, SAMPLE[lang]],
            )
            assert drawn[0] != drawn[1], lang
            page.screenshot(path=str(tmp_path / f"{lang}-task.png"), full_page=True)
        missing = next(t for t in tasks["ur"] if t.data["image"].startswith("data:"))
        assert missing.data["image_note"].startswith("image not found: 002.png")
        page.goto(f"{url}/projects/{projects['ur']}/data?task={missing.id}")
        page.locator(".pg-target").first.wait_for(timeout=60_000)
        page.get_by_text("image not found: 002.png", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "ur-missing-image.png"), full_page=True)
    print(f"screenshots: {tmp_path}")


def test_image_fields_for_every_case(tmp_path):
    (tmp_path / "a.jpg").write_bytes(png(4, 4))
    local = ImageRoot.parse(str(tmp_path))
    from annotation.assets import Served

    served = Served(tmp_path / "served", "/srv/served")
    assert local.task_fields("a.jpg", served) == {
        "image": "/data/local-files/?d=images/a.jpg",
        "image_note": "image a.jpg",
    }
    assert local.task_fields("b.jpg", served)["image_note"].startswith("image not found: b.jpg")
    assert local.task_fields("../etc/passwd", served)["image"].startswith(
        "data:image/svg+xml"
    )  # never outside the folder
    assert local.task_fields(None, served)["image_note"] == "no image: this conversation has none"
    remote = ImageRoot.parse("https://images.example.org/coco/train2017")
    assert remote.task_fields("0001 x.jpg", None)["image"] == "https://images.example.org/coco/train2017/0001%20x.jpg"
    with pytest.raises(FileNotFoundError, match="neither a URL"):
        ImageRoot.parse(str(tmp_path / "nope"))
    # a name with markup characters is text in the "not found" picture, not markup (the SVG stays well-formed)
    import base64
    import xml.etree.ElementTree as ET

    picture = local.task_fields("<b>&x.jpg", served)["image"]
    svg = ET.fromstring(base64.b64decode(picture.split(",", 1)[1]))
    assert "".join(svg.itertext()) == "Image not found: <b>&x.jpg"


def test_a_correction_comes_back_and_the_release_has_the_llava_bench_layout(ws, bench_set, labelstudio_server):
    admin = LabelStudio(base_url=labelstudio_server.url, api_key=os.environ["LABEL_STUDIO_API_KEY"])
    projects = json.loads((ws / "review" / "projects.json").read_text())
    task = next(
        t
        for t in admin.tasks.list(project=projects["ur"], fields="all", page_size=1000)
        if t.data["conversation_id"] == "question-0" and t.data["turn_index"] == 0
    )
    admin.annotations.create(
        id=task.id,
        result=[
            {"from_name": "translation", "to_name": "english", "type": "textarea", "value": {"text": [FIX]}},
            {
                "from_name": "categories",
                "to_name": "english",
                "type": "choices",
                "value": {"choices": ["mistranslation"]},
            },
            {"from_name": "rating", "to_name": "english", "type": "rating", "value": {"rating": 2}},
        ],
    )
    assert polyglot("review", "pull", "--workspace", str(ws)).returncode == 0
    proc = polyglot("benchmark", "publish", "--workspace", str(ws))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    release = ws / "releases" / "v1"
    assert polyglot("release", "verify", "v1", "--workspace", str(ws)).returncode == 0
    manifest = json.loads((release / "manifest.json").read_text())
    qids = [q["question_id"] for q in bench_set["questions"]]
    for lang in ["en", *LANGS]:
        read = {
            name: [json.loads(line) for line in (release / lang / name).read_text(encoding="utf-8").splitlines()]
            for name in ("questions.jsonl", "answers_gpt4.jsonl", "context.jsonl")
        }
        questions, answers, context = read["questions.jsonl"], read["answers_gpt4.jsonl"], read["context.jsonl"]
        assert [q["question_id"] for q in questions] == qids and [a["question_id"] for a in answers] == qids
        assert [q["category"] for q in questions] == [q["category"] for q in bench_set["questions"]]
        assert [q["image"] for q in questions] == [q["image"] for q in bench_set["questions"]]
        assert [c["image"] for c in context] == ["001.png", "002.png"] and all(
            a["model_id"] == "gpt-4-0314" for a in answers
        )
        if lang == "en":
            assert [q["text"] for q in questions] == [q["text"] for q in bench_set["questions"]]
            assert {q["review_status"] for q in questions} == {"source"}
            continue
        statuses = [x["review_status"] for rows in read.values() for x in rows]
        if lang == "ur":
            assert questions[0]["text"] == FIX and questions[0]["review_status"] == "corrected"
            assert statuses.count("corrected") == 1 and statuses.count("unreviewed") == len(statuses) - 1
            assert manifest["counts"]["ur"]["reviewed_items"] == 1
        else:
            assert set(statuses) == {"unreviewed"} and manifest["counts"][lang]["reviewed_items"] == 0
    card = (release / "README.md").read_text()
    assert "| ur | Urdu | 4 | 4 | 2 | 1 of 10 |" in card
    assert proc.returncode == 0 and "1/10" in proc.stdout
    assert corrections.in_force(ws, "ur").height == 1
