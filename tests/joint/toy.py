"Toy joint data for the joint tests: intents and spans a tiny model can learn in seconds, as span JSONL."
import json
from pathlib import Path

CITIES = ("boston", "paris", "tokyo", "lima", "oslo", "cairo", "delhi", "quito")
DAYS = ("monday", "friday", "sunday", "tomorrow")


def toy_records(copies: int = 1) -> list[dict]:
    "Flight and weather requests with a city and a day, each a distinct text, with character spans."
    records = []
    for n in range(copies):
        for i, city in enumerate(CITIES):
            for j, day in enumerate(DAYS):
                if (i + j) % 2:
                    text = f"fly to {city} on {day}" + (f" please {n}" if n else "")
                    intent, start = "book_flight", 7
                else:
                    text = f"weather in {city} {day}" + (f" please {n}" if n else "")
                    intent, start = "get_weather", 11
                day_start = text.index(day, start + len(city))
                records.append({"text": text, "intent": intent,
                                "entities": [{"start": start, "end": start + len(city), "label": "city"},
                                             {"start": day_start, "end": day_start + len(day), "label": "day"}]})
    return records


def write_toy_jsonl(path: Path, copies: int = 1, intents: bool = True) -> Path:
    "The toy records as span JSONL at `path` (without intents: NER-style)."
    rows = [r if intents else {k: v for k, v in r.items() if k != "intent"} for r in toy_records(copies)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_base(folder: Path) -> Path:
    "A tiny random BERT with the real MiniLM tokenizer saved in `folder`: a base model for the joint model's tests."
    from ainative.demo import tiny_model, tiny_tokenizer
    tokenizer = tiny_tokenizer()
    tiny_model(2, vocab_size=len(tokenizer), max_positions=128).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
