"""A joint intent + slots version served by `ainative serve`: entities beside the intent, offsets into the text as sent."""
from __future__ import annotations

import csv
import json

import pytest

from ainative.batch import PredictConfig, predict_file
from ainative.demo import JOINT_DEMO_MODEL, joint_demo_registry
from ainative.serving import ServingConfig

# The same request typed several ways: each normalises (NFKC, whitespace runs to one space) to the first text of its
# group, so the model reads that text and must find the same entities; each answer's offsets must index the text sent.
PLAIN = "weather in boston friday"
SAME_AS = {PLAIN: ("weather  in   boston friday",              # doubled spaces
                   "weather in ＢＯＳＴＯＮ ｆｒｉｄａｙ",        # full-width letters
                   "weather in bo\ufb06on friday",             # a ligature: "ﬆ" is one character sent, two read
                   "\u00a0\u2003weather in boston friday"),   # leading no-break and em spaces
           "🙂 weather in boston friday": ("🙂   weather in  boston \tfriday",)}  # an emoji before the entities
VARIANTS = tuple(text for variants in SAME_AS.values() for text in variants)


@pytest.fixture(scope="module")
def joint_registry(isolated_environment, tmp_path_factory):
    "A tiny joint model trained on the demo's flight and weather requests, optimised and in production (~40 s)."
    return joint_demo_registry(tmp_path_factory.mktemp("joint-demo"))


@pytest.fixture(scope="module")
def joint_server(joint_registry, start_server):
    return start_server(joint_registry, args=("--model", JOINT_DEMO_MODEL))


def entity_keys(answer: dict) -> list[tuple[str, str]]:
    "The (type, value as the model read it) of an answer's entities."
    import unicodedata
    return [(e["entity"], " ".join(unicodedata.normalize("NFKC", e["value"]).split()).lower()) for e in answer["entities"]]


def same_entities(found: list[dict], expected: list[dict]) -> bool:
    "The same spans, types and values; confidences alike (a text batched with others may round differently in INT8 kernels)."
    def spans(entities): return [(e["entity"], e["start"], e["end"], e["value"]) for e in entities]
    return spans(found) == spans(expected) and all(abs(a["confidence"] - b["confidence"]) < 0.05 for a, b in zip(found, expected))


def check_offsets(text: str, answer: dict) -> None:
    for entity in answer["entities"]:
        assert 0 <= entity["start"] < entity["end"] <= len(text), entity
        assert text[entity["start"]:entity["end"]] == entity["value"], (text, entity)
        assert 0 < entity["confidence"] <= 1


def test_the_model_endpoint_names_the_task_and_the_slot_labels(joint_server):
    with joint_server.client() as client:
        described = client.get("/model").json()
    assert described["task"] == "intent_slots" and described["slot_labels"] == ["city", "day"]
    assert described["name"] == JOINT_DEMO_MODEL and described["metrics"]["test_slot_f1"] is not None


def test_predict_answers_entities_with_offsets_into_the_text_as_sent(joint_server):
    with joint_server.client() as client:
        plain = client.post("/predict", json={"text": PLAIN}).json()
        assert plain["intent"] in ("get_weather", "book_flight") and not plain["truncated"]
        assert entity_keys(plain) == [("city", "boston"), ("day", "friday")]  # a training text: the toy model learnt it
        assert [(e["start"], e["end"]) for e in plain["entities"]] == [(11, 17), (18, 24)]
        for read, variants in SAME_AS.items():
            reference = client.post("/predict", json={"text": read}).json()
            check_offsets(read, reference)
            for text in variants:
                answer = client.post("/predict", json={"text": text}).json()
                check_offsets(text, answer)
                assert entity_keys(answer) == entity_keys(reference) and answer["intent"] == reference["intent"], text
        ligature = client.post("/predict", json={"text": SAME_AS[PLAIN][2]}).json()["entities"]
        assert [(e["value"], e["start"], e["end"]) for e in ligature] == [("bo\ufb06on", 11, 16), ("friday", 17, 23)]


def test_batch_answers_entities_for_each_text_in_order(joint_server):
    texts = [PLAIN, *VARIANTS, "fly to lima on monday", "nothing to find here"]
    with joint_server.client() as client:
        body = client.post("/predict/batch", json={"texts": texts}).json()
        singles = [client.post("/predict", json={"text": text}).json() for text in texts]
    assert len(body["predictions"]) == len(texts)
    for text, answer, single in zip(texts, body["predictions"], singles):
        check_offsets(text, answer)
        assert same_entities(answer["entities"], single["entities"]), text  # a batch answers as single requests do
    assert ("city", "lima") in entity_keys(body["predictions"][len(VARIANTS) + 1])


def test_a_text_past_the_token_limit_is_truncated_and_its_entities_still_index_it(joint_server):
    text = "weather in boston friday " + "and more words " * 40  # far past the 24 tokens the model reads
    with joint_server.client() as client:
        answer = client.post("/predict", json={"text": text}).json()
    assert answer["truncated"]
    check_offsets(text, answer)
    read = len(" ".join(text.split()[:22]))  # 24 tokens less [CLS] and [SEP], one token a word here
    assert all(entity["end"] <= read for entity in answer["entities"])


def test_predict_writes_the_servers_entities_for_each_row(joint_registry, joint_server, tmp_path):
    texts = [PLAIN, *VARIANTS, "fly to lima on monday"]
    rows = tmp_path / "in.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in enumerate(texts)), encoding="utf-8")
    serving = ServingConfig(registry_dir=str(joint_registry), model=JOINT_DEMO_MODEL, device="cpu")
    for output in (tmp_path / "out.jsonl", tmp_path / "out.csv"):
        summary = predict_file(PredictConfig(input=str(rows), output=str(output), progress=False), serving)
        assert summary["answered"] == len(texts) and summary["errors"] == 0
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as file:
        cells = [json.loads(row["entities"]) for row in csv.DictReader(file)]
    with joint_server.client() as client:
        served = [client.post("/predict", json={"text": text}).json()["entities"] for text in texts]
    for text, jsonl, csv_cells, answer in zip(texts, written, cells, served):  # the same model and answers, in each format
        assert same_entities(jsonl["entities"], answer) and csv_cells == jsonl["entities"], text


def test_intent_only_versions_answer_without_entities(default_server):
    with default_server.client() as client:
        answer = client.post("/predict", json={"text": "where is my card?"}).json()
        batch = client.post("/predict/batch", json={"texts": ["where is my card?"]}).json()
    assert "entities" not in answer and "entities" not in batch["predictions"][0]
