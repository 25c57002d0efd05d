"The distillation loss on examples small enough to compute by hand."
from __future__ import annotations

import math

import pytest
import torch

from ainative.distill import DistillationConfig, distillation_loss

STUDENT, TEACHER, LABEL = torch.tensor([[0.0, 0.0]]), torch.tensor([[2 * math.log(3), 0.0]]), torch.tensor([0])
# At T = 2 the teacher says (3/4, 1/4), the student (1/2, 1/2):
KL_BY_HAND = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)  # 0.130812


def test_soft_term_is_kl_teacher_to_student_times_t_squared():
    assert KL_BY_HAND == pytest.approx(0.130812, abs=1e-6)
    loss = distillation_loss(STUDENT, TEACHER, LABEL, alpha=1.0, temperature=2.0)
    assert loss.item() == pytest.approx(4 * KL_BY_HAND, abs=1e-6)


def test_hard_term_is_cross_entropy_of_the_unsoftened_logits():
    assert distillation_loss(STUDENT, TEACHER, LABEL, alpha=0.0, temperature=2.0).item() == pytest.approx(math.log(2), abs=1e-6)
    # with the other label and a confident student: -log softmax([3, 0])[1] = log(1 + e^3)
    confident = torch.tensor([[3.0, 0.0]])
    assert distillation_loss(confident, TEACHER, torch.tensor([1]), alpha=0.0).item() == pytest.approx(math.log(1 + math.e ** 3), abs=1e-5)


def test_mix_and_the_defaults_come_from_the_config():
    mixed = distillation_loss(STUDENT, TEACHER, LABEL, alpha=0.5, temperature=2.0).item()
    assert mixed == pytest.approx(0.5 * 4 * KL_BY_HAND + 0.5 * math.log(2), abs=1e-6) and mixed == pytest.approx(0.608198, abs=1e-6)
    config = DistillationConfig()
    by_default = distillation_loss(STUDENT, TEACHER, LABEL).item()
    assert by_default == pytest.approx(distillation_loss(STUDENT, TEACHER, LABEL, config.alpha, config.temperature).item())


def test_batch_mean_and_no_cost_for_agreeing():
    two = distillation_loss(torch.cat([STUDENT, STUDENT]), torch.cat([TEACHER, TEACHER]), torch.tensor([0, 0]), 1.0, 2.0)
    assert two.item() == pytest.approx(4 * KL_BY_HAND, abs=1e-6)  # a mean over rows, not a sum
    assert distillation_loss(TEACHER, TEACHER, LABEL, alpha=1.0).item() == pytest.approx(0.0, abs=1e-7)


def test_gradient_pulls_the_student_towards_the_teacher():
    student = STUDENT.clone().requires_grad_(True)
    distillation_loss(student, TEACHER, LABEL, alpha=1.0, temperature=2.0).backward()
    # d/dz_s of T² KL = T (p_s - p_t) = 2 * ((1/2, 1/2) - (3/4, 1/4))
    assert student.grad[0].tolist() == pytest.approx([-0.5, 0.5], abs=1e-6)


@pytest.mark.parametrize("bad", [{"alpha": -0.1}, {"alpha": 1.01}, {"temperature": 0.0}, {"temperature": -1.0}])
def test_bad_parameters_are_refused_with_the_reason(bad):
    from ainative.core import ConfigError
    with pytest.raises(ConfigError, match="must be"):
        DistillationConfig(**bad)
