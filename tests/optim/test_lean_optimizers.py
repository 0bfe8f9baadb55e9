"""The lean CPU steps of RMSProp, AdaMax and NAdam are torch's update, bit for bit, with
torch's checkpoint layout, and no per-parameter host reads."""

import copy
import io

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from trainwell.optim import make_optimizer
from trainwell.optim.lean import LeanStep
from trainwell.optim.lean_nadam import LeanNAdam
from trainwell.optim.lean_optimizers import LeanAdamax, LeanRMSprop

LEAN = {"rmsprop": (LeanRMSprop, torch.optim.RMSprop), "adamax": (LeanAdamax, torch.optim.Adamax),
        "nadam": (LeanNAdam, torch.optim.NAdam)}


def _pair(dtype=torch.float32):
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(),
                      nn.Linear(8, 3)).to(dtype)
    return a, copy.deepcopy(a), torch.randn(32, 6, dtype=dtype)


def _train(pairs, x, steps):
    for _ in range(steps):
        for model, opt in pairs:
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("name", list(LEAN))
def test_lean_step_is_torchs_update_bit_for_bit(name, weight_decay, dtype):
    lean_cls, torch_cls = LEAN[name]
    ref, lean, x = _pair(dtype)
    o_lean = make_optimizer(lean.parameters(), name, lr=0.01, weight_decay=weight_decay)
    assert type(o_lean) is lean_cls
    o_ref = torch_cls(ref.parameters(), **o_lean.defaults)   # the same hyperparameters
    _train([(ref, o_ref), (lean, o_lean)], x, 25)
    assert o_lean.__dict__.get("_flat_states"), "the lean step did not run"
    assert _same(ref, lean)
    for s_ref, s_lean in zip(o_ref.state.values(), o_lean.state.values(), strict=True):
        assert s_ref.keys() == s_lean.keys()
        for key in s_ref:
            assert torch.equal(s_ref[key], s_lean[key]), key


@pytest.mark.parametrize("name", list(LEAN))
def test_checkpoints_load_both_ways_and_training_continues_identically(name):
    lean_cls, torch_cls = LEAN[name]
    ref, lean, x = _pair()
    o_ref = torch_cls(ref.parameters(), lr=0.01, foreach=True)
    o_lean = lean_cls(lean.parameters(), lr=0.01, foreach=True)
    _train([(ref, o_ref), (lean, o_lean)], x, 5)
    # swap the states: each optimizer continues from the other implementation's checkpoint
    saved_ref, saved_lean = copy.deepcopy(o_ref.state_dict()), copy.deepcopy(o_lean.state_dict())
    o_ref.load_state_dict(saved_lean)
    o_lean.load_state_dict(saved_ref)
    _train([(ref, o_ref), (lean, o_lean)], x, 5)
    assert _same(ref, lean)
    assert float(o_lean.state_dict()["state"][0]["step"]) == 10.0
    # torch.save keeps the flat buffers' views together
    buffer = io.BytesIO()
    torch.save(o_lean.state_dict(), buffer)
    fresh_model = copy.deepcopy(lean)
    fresh = lean_cls(fresh_model.parameters(), lr=0.01, foreach=True)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    _train([(lean, o_lean), (fresh_model, fresh)], x, 3)
    assert _same(lean, fresh_model)


@pytest.mark.parametrize("name", list(LEAN))
def test_a_parameter_without_gradient_runs_torchs_step_then_the_lean_one_again(name):
    lean_cls, torch_cls = LEAN[name]
    ref, lean, x = _pair()
    o_ref = torch_cls(ref.parameters(), lr=0.01, foreach=True)
    o_lean = lean_cls(lean.parameters(), lr=0.01, foreach=True)
    _train([(ref, o_ref), (lean, o_lean)], x, 3)
    for model, opt in ((ref, o_ref), (lean, o_lean)):   # the last layer gets no gradient once
        opt.zero_grad()
        model[:-1](x).pow(2).mean().backward()
        opt.step()
    # steps now differ between parameters: torch's step keeps running, same numbers
    _train([(ref, o_ref), (lean, o_lean)], x, 3)
    assert _same(ref, lean)
    steps = {float(s["step"]) for s in o_lean.state.values()}
    assert steps == {6.0, 7.0}


class _OpRecorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", list(LEAN))
def test_lean_step_reads_no_counter_per_parameter(name):
    _, model, x = _pair()
    opt = make_optimizer(model.parameters(), name, lr=0.01)
    _train([(model, opt)], x, 2)
    opt.zero_grad()
    model(x).pow(2).mean().backward()
    with _OpRecorder() as rec:
        opt.step()
    reads = [op for op in rec.ops if "_local_scalar_dense" in op]
    # torch's own step reads each of the 6 parameters' counters; NAdam's lean step reads its
    # momentum product once (a CPU tensor), the others nothing.
    assert len(reads) == (1 if name == "nadam" else 0)
    assert len(rec.ops) < 20, rec.ops   # whole-buffer operations, not one per parameter


def test_options_the_lean_step_does_not_cover_run_torchs_step():
    _, model, x = _pair()
    for opt in (LeanRMSprop(model.parameters(), lr=0.01, momentum=0.9),
                LeanRMSprop(model.parameters(), lr=0.01, centered=True),
                LeanAdamax(model.parameters(), lr=0.01, maximize=True),
                LeanNAdam(model.parameters(), lr=0.01, foreach=False)):
        assert isinstance(opt, LeanStep)
        _train([(model, opt)], x, 2)
        assert not opt.__dict__.get("_flat_states")


@pytest.mark.parametrize("name", list(LEAN))
def test_a_group_added_later_and_a_replaced_state_entry_follow_torch(name):
    lean_cls, torch_cls = LEAN[name]
    ref, lean, x = _pair()
    head_ref = nn.Linear(3, 2)
    head_lean = copy.deepcopy(head_ref)
    o_ref = torch_cls(ref[:3].parameters(), lr=0.01, foreach=True)
    o_lean = lean_cls(lean[:3].parameters(), lr=0.01, foreach=True)
    _train([(ref, o_ref), (lean, o_lean)], x, 3)
    o_ref.add_param_group({"params": list(ref[3:].parameters()) + list(head_ref.parameters())})
    o_lean.add_param_group({"params": list(lean[3:].parameters()) + list(head_lean.parameters())})
    first = next(lean.parameters())
    key = next(iter(lean_cls._buffers))
    o_lean.state[first][key] = o_lean.state[first][key].clone()   # a user's own tensor
    for model, head, opt in ((ref, head_ref, o_ref), (lean, head_lean, o_lean)):
        for _ in range(3):
            opt.zero_grad()
            (model(x).pow(2).mean() + head(model(x)).pow(2).mean()).backward()
            opt.step()
    assert _same(ref, lean) and _same(head_ref, head_lean)
    assert len(o_lean.__dict__["_flat_states"]) == 2
