"""Second-reader audit checks: the lr schedule against mdistiller's formula, the CE arm's gradient, and the
oracle's nuisance sign conventions."""

import torch
import torch.nn.functional as F
from makd.experiment import lr_milestones
from makd.loss import makd_loss
from makd.oracle import NUISANCE_QUESTIONS, QUESTIONS, OracleConfig, _shift, make_aspect_data


def _mdistiller_lr(epoch_1based: int, stages: tuple[float, ...], lr: float = 0.01) -> float:
    # mdistiller engine/utils.adjust_learning_rate: steps = sum(epoch > stages); lr * 0.1 ** steps
    return lr * 0.1 ** sum(epoch_1based > s for s in stages)


def test_lr_schedule_matches_mdistiller_step_decay():
    for epochs in (240, 40):
        stages = tuple(epochs * f for f in (150 / 240, 180 / 240, 210 / 240))  # 240: (150, 180, 210)
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=0.01, momentum=0.9)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=lr_milestones(epochs), gamma=0.1)
        for e in range(epochs):  # the lr used during 0-based epoch e (stepped after each epoch, as in run)
            got = opt.param_groups[0]["lr"]
            want = _mdistiller_lr(e + 1, stages)
            assert abs(got - want) <= 1e-12 * want, (epochs, e, got, want)
            opt.step()
            sched.step()
    assert lr_milestones(240) == [150, 180, 210] and lr_milestones(40) == [25, 30, 35]


def test_ce_arm_gives_aspect_logits_no_gradient():
    # alpha = 0: the aspect logits get exactly zero gradient, the class logits CE's gradient
    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, 4 + 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 4, (6,), generator=g)
    makd_loss(s, y, torch.rand(6, 3, generator=g, dtype=torch.float64), 4, alpha=0.0).backward()
    assert torch.all(s.grad[:, 4:] == 0)
    ref = s.detach().clone().requires_grad_(True)
    F.cross_entropy(ref[:, :4], y).backward()
    assert torch.allclose(s.grad, ref.grad, rtol=0, atol=1e-15)


def test_shift_direction_matches_the_position_questions():
    # "upper part" margin = -dy / max_shift and "right part" = dx / max_shift, so dy > 0 must move the
    # object DOWN and dx > 0 RIGHT
    x = torch.zeros(1, 5, 5)
    x[0, 2, 2] = 1.0
    down = _shift(x, 1, 0)
    right = _shift(x, 0, 1)
    assert down[0, 3, 2] == 1.0 and down.sum() == 1.0
    assert right[0, 2, 3] == 1.0 and right.sum() == 1.0


def test_tint_and_brightness_margins_follow_the_pixels():
    d = make_aspect_data(OracleConfig(n_per_class=8), seed=1)
    k = len(QUESTIONS) - len(NUISANCE_QUESTIONS)
    warm, bright = d.margins[:, k], d.margins[:, k + 1]
    red_minus_blue = (d.images.x[:, 0] - d.images.x[:, 2]).mean((1, 2))
    mean_level = d.images.x.mean((1, 2, 3))

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return (a * b).sum() / (a.norm() * b.norm())

    assert corr(warm, red_minus_blue) > 0.2  # warm-toned: red up, blue down
    assert corr(bright, mean_level) > 0.2  # bright: all channels scaled up
