import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # toy.py: the joint tests' data and tiny base model


@pytest.fixture(scope="session")
def tokenizer():
    from ainative.demo import tiny_tokenizer
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory):
    from toy import tiny_base
    return tiny_base(tmp_path_factory.mktemp("tiny-base"))
