"""A recipe resumes where it stopped: steps recorded as done are reused, a failed or killed step is made again, and a
step made again makes the steps that need it again, and nothing else. The steps here are fakes that write a file, so
the logic is tested in milliseconds; chapter 17a runs a real recipe on a tiny model."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ainative.recipe as recipe_module
from ainative.core import ConfigError
from ainative.recipe import Recipe, Step, find_recipe, read_state, run_recipe

FAKE_STEPS = '''
from pathlib import Path
from ainative.recipe import Step

def fake_steps(folder: Path, calls: list[str], inputs: dict[str, int], fail: str | None = None, sleep_in: str | None = None):
    "Steps a -> b -> c (c needs b, b needs a) and d (needs a); each writes <step>/done when made."
    def maker(name):
        def make():
            calls.append(name)
            if name == fail: raise RuntimeError(f"step {name} failed")
            if name == sleep_in:
                (folder / "sleeping").write_text("1")
                import time; time.sleep(60)
            (folder / name).mkdir(parents=True, exist_ok=True)
            (folder / name / "done").write_text("1")
        return make
    needs = {"a": (), "b": ("a",), "c": ("b",), "d": ("a",)}
    return [Step(name, folder / name, {"value": inputs.get(name, 0)}, needs[name], maker(name),
                 lambda name=name: (folder / name / "done").is_file()) for name in "abcd"]
'''


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    "Run recipes with the fake steps; returns (run, calls): run(inputs, fail) makes the recipe `r` under tmp_path."
    namespace: dict = {}
    exec(FAKE_STEPS, namespace)
    calls: list[str] = []
    settings = {"inputs": {}, "fail": None}
    monkeypatch.setattr(recipe_module, "recipe_steps",
                        lambda recipe, folder: namespace["fake_steps"](Path(folder), calls, settings["inputs"], settings["fail"]))

    def run(inputs=None, fail=None):
        settings.update(inputs=inputs or {}, fail=fail)
        calls.clear()
        return run_recipe(Recipe("r", profile="smoke"), tmp_path)
    return run, calls


def made(summary) -> list[str]:
    return [step["step"] for step in summary["steps"] if step["made"]]


def test_a_second_call_reuses_every_step(fakes):
    run, calls = fakes
    assert made(run()) == ["a", "b", "c", "d"]
    again = run()
    assert made(again) == [] and calls == [] and again["seconds_this_call"] == 0


def test_a_failed_step_leaves_the_steps_before_it_recorded_and_the_next_call_resumes_there(fakes, tmp_path):
    run, calls = fakes
    with pytest.raises(RuntimeError, match="step c failed"): run(fail="c")
    assert calls == ["a", "b", "c"] and sorted(read_state(tmp_path / "r")) == ["a", "b"]
    summary = run()
    assert calls == ["c", "d"] and made(summary) == ["c", "d"]


def test_a_changed_step_makes_it_and_the_steps_that_need_it_again_and_nothing_else(fakes):
    run, calls = fakes
    run()
    assert made(run(inputs={"b": 1})) == ["b", "c"]          # d needs only a
    assert made(run(inputs={"b": 1, "a": 2})) == ["a", "b", "c", "d"]


def test_a_step_whose_folder_lost_its_files_is_made_again_with_what_needs_it(fakes, tmp_path):
    run, calls = fakes
    run()
    (tmp_path / "r" / "a" / "done").unlink()
    assert made(run()) == ["a", "b", "c", "d"]
    (tmp_path / "r" / "c" / "done").unlink()
    assert made(run()) == ["c"]


def test_a_killed_process_resumes_at_the_step_it_was_in(tmp_path):
    "SIGKILL in the middle of step c: a, b stay recorded (the state file is whole), and the next process makes c and d only."
    script = tmp_path / "run_fakes.py"
    script.write_text(FAKE_STEPS + f'''
import json, sys
import ainative.recipe as recipe_module
from ainative.recipe import Recipe, run_recipe
calls = []
sleep_in = sys.argv[1] if len(sys.argv) > 1 else None
recipe_module.recipe_steps = lambda recipe, folder: fake_steps(Path(folder), calls, {{}}, None, sleep_in)
summary = run_recipe(Recipe("r", profile="smoke"), {str(tmp_path)!r})
print(json.dumps({{"calls": calls}}))
''')
    process = subprocess.Popen([sys.executable, str(script), "c"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / "r" / "sleeping").exists():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert sorted(json.loads((tmp_path / "r" / "recipe.json").read_text())["steps"]) == ["a", "b"]
    finished = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert json.loads(finished.stdout.splitlines()[-1])["calls"] == ["c", "d"]


@pytest.mark.parametrize("text, message", [
    ("teacher_seeds: [1, 1]\n", "must be one or more different seeds"),
    ("teacher_seeds: []\n", "must be one or more different seeds"),
    ("profile: fast\n", "Unknown profile 'fast'"),
    ("last_stage: training\n", "is not a stage after training"),
    ("distillation: {alpah: 0.3}\n", "Unknown distillation parameter(s) ['alpah']"),
    ("- 1\n- 2\n", "holds a mapping of fields"),
    ("teacher_seeds: [1, 2\n", "Cannot read the recipe"),
])
def test_a_bad_recipe_file_is_refused_naming_the_file_and_the_fix(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        find_recipe(str(path))
    assert message in raised.value.what and str(path) in raised.value.where and raised.value.fix


def test_an_override_no_stage_declares_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="No stage among"):
        run_recipe(Recipe("r", profile="smoke", overrides={"epochz": 3}), tmp_path)
    assert not (tmp_path / "r" / "recipe.json").exists()
