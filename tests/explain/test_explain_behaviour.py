"Behavioural-test machinery: perturbations, cases for the model's labels only, pass/fail bookkeeping."
import pandas as pd
import pytest

from ainative.explain import (MINIMUM_FUNCTIONALITY, PERTURBATIONS, add_typo, behaviour_cases, behaviour_summary,
                              run_behaviour_tests, strip_punctuation)

SUPPORT_INTENTS = ["order_status", "refund_request", "delivery_problem", "cancel_order", "account_access", "payment_issue"]


def test_every_support_intent_and_some_banking77_intents_have_examples():
    assert set(SUPPORT_INTENTS) <= set(MINIMUM_FUNCTIONALITY)
    assert {"card_arrival", "lost_or_stolen_card", "exchange_rate"} <= set(MINIMUM_FUNCTIONALITY)
    assert all(len(examples) >= 3 for examples in MINIMUM_FUNCTIONALITY.values())


@pytest.mark.parametrize("text, expected", [("where is my parcel", "where is my pacrel"), ("cool", "colo"),
                                            ("a b c", "a b c"), ("I'm OK", "I'm OK")])
def test_typo_is_deterministic_and_small(text, expected):
    assert add_typo(text) == expected
    assert sorted(add_typo(text)) == sorted(text)  # same letters, two swapped


def test_strip_punctuation_keeps_apostrophes_in_words():
    assert strip_punctuation("Where's my parcel?! 'Now', please...") == "Where's my parcel Now please"


def test_every_perturbation_changes_a_typical_text():
    text = "Where is my parcel?"
    changed = {name: perturb(text) for name, perturb in PERTURBATIONS.items()}
    assert all(value != text for value in changed.values()), changed
    assert {"typo", "lower case", "upper case", "no punctuation", "prefix 'hi, '", "prefix 'please, '"} <= set(changed)


def test_cases_use_only_the_models_labels_and_skip_unchanged_texts():
    cases = behaviour_cases(["card_arrival", "exchange_rate", "not_in_examples"], ["hi", "where is my card?"])
    functionality = cases[cases.family == "minimum functionality"]
    assert set(functionality.test) == {"card_arrival", "exchange_rate"} and (functionality.expected == functionality.test).all()
    invariance = cases[cases.family == "invariance"]
    assert (invariance.text != invariance.original).all()
    assert not ((invariance.test == "lower case") & (invariance.original == "hi")).any()  # "hi" is already lower case


def test_failures_are_reported_not_hidden():
    "A case-sensitive keyword model fails the upper-case test and passes politeness; the table says so."
    def predict(texts):
        return ["refund_request" if "refund" in t else "cancel_order" if "cancel" in t else "order_status" for t in texts]
    cases = behaviour_cases(["refund_request", "cancel_order", "order_status"], ["please refund me", "cancel it"])
    results = run_behaviour_tests(predict, cases)
    assert len(results) == len(cases) and {"predicted", "passed", "expected"} <= set(results.columns)
    invariance = results[results.family == "invariance"]
    assert (invariance.expected == invariance.original.map(dict(zip(["please refund me", "cancel it"],
                                                                    ["refund_request", "cancel_order"])))).all()
    summary = behaviour_summary(results).set_index("test")
    assert summary.loc["upper case", "pass rate"] == 0 and summary.loc["upper case", "cases"] == 2
    assert summary.loc["prefix 'hi, '", "pass rate"] == 1
    assert summary.loc["refund_request", "cases"] == 3
    ordered = behaviour_summary(results)
    for _, family in ordered.groupby("family", sort=False):
        assert family["pass rate"].is_monotonic_increasing  # failures first
