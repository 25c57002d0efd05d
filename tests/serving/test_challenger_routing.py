"""The challenger's routing without a server: which requests the shadow samples, what a full shadow queue does (drop and
count, never wait), and where a split sends a client key, including its fallback to the champion."""
from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace

import pytest

from ainative.core import ConfigError
from ainative.serving import ServingConfig
from ainative.traffic import choose_model, offer_shadow, share_bucket


def state_with(mode: str = "shadow", active: bool = True, queue: int = 1, **settings) -> SimpleNamespace:
    "What `offer_shadow` and `choose_model` read of the answering part: config, champion batcher, challenger."
    challenger = SimpleNamespace(mode=mode, active=active, counts=Counter(), batcher="challenger batcher",
                                 shadow=asyncio.Queue(maxsize=queue) if mode == "shadow" else None)
    return SimpleNamespace(config=ServingConfig(challenger="challenger", challenger_mode=mode, **settings),
                           batcher="champion batcher", challenger=challenger)


def test_a_full_shadow_queue_drops_and_counts_without_waiting():
    state = state_with(queue=1)
    assert offer_shadow(state, "first", ["a", "b"]) is True
    assert offer_shadow(state, "second", ["c", "d", "e"]) is False  # the queue holds one request: dropped at once
    assert state.challenger.counts == Counter({"dropped": 3}) and state.challenger.shadow.qsize() == 1


def test_the_shadow_samples_by_request_id_and_only_while_active():
    ids = [f"req-{i}" for i in range(400)]
    state = state_with(queue=1000, shadow_share=0.25)
    taken = [request_id for request_id in ids if offer_shadow(state, request_id, ["x"])]
    assert taken == [request_id for request_id in ids if share_bucket(request_id) < 0.25] and 60 < len(taken) < 140
    idle = state_with(queue=1000, active=False)
    assert not offer_shadow(idle, "req-1", ["x"]) and idle.challenger.counts == Counter()
    assert not offer_shadow(SimpleNamespace(challenger=None, config=ServingConfig()), "req-1", ["x"])


def test_a_split_sends_a_key_to_one_side_and_falls_back_when_the_challenger_is_not_ready():
    keys = [f"user-{i}" for i in range(200)]
    state = state_with("split", split_share=0.3)
    sides = {key: choose_model(state, key)[0] for key in keys}
    assert sides == {key: "challenger" if share_bucket(key) < 0.3 else "champion" for key in keys}
    assert all(choose_model(state, key)[0] == sides[key] for key in keys)  # sticky
    assert choose_model(state, None) == ("champion", "champion batcher")  # no key: the champion
    down = state_with("split", active=False, split_share=1.0)
    assert [choose_model(down, key) for key in keys[:5]] == [("champion", "champion batcher")] * 5
    assert down.challenger.counts == Counter({"split_fallbacks": 5})
    shadow = state_with("shadow", split_share=1.0)
    assert choose_model(shadow, "user-1")[0] == "champion"  # a shadow never answers


@pytest.mark.parametrize("bad", [{"shadow_share": -0.1}, {"split_share": 2}, {"shadow_queue": 0}, {"challenger_mode": "canary"},
                                 {"client_key_header": "X Client Key"}])
def test_bad_challenger_settings_are_refused_with_the_field(bad):
    with pytest.raises(ConfigError) as refused:
        ServingConfig(challenger="challenger", **bad)
    assert refused.value.where == next(iter(bad))
