"""trainers.runtime: device selection, the LayerNorm stand-in, faster proxies score as eager."""

from __future__ import annotations

import pytest
import torch

from nas import ArchConfig
from nas.blocks import LayerNorm2d
from nas.errors import ConfigError
from nas.model import build_model
from trainers.config import EAGER, ProxyBudget, ProxyRuntime, TaskConfig, validate
from trainers.proxy import train_and_eval
from trainers.runtime import ChannelLayerNorm, resolve_device, swap_stand_ins


def test_device_auto_is_cuda_only_when_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match=r"^proxy\.runtime\.device: cuda is not available"):
        resolve_device("cuda", "proxy.runtime.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_a_cuda_proxy_on_a_cpu_only_machine_fails_before_training(
    monkeypatch: pytest.MonkeyPatch, tiny_arch: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="runtime.device: cuda is not available"):
        train_and_eval(tiny_arch, TaskConfig(), tiny_budget, runtime=ProxyRuntime(device="cuda"))


def test_runtime_is_validated_with_one_line_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^runtime\.device: Input should be 'auto', 'cpu'"):
        validate(ProxyRuntime, {"device": "gpu"}, "runtime.")
    with pytest.raises(ConfigError, match=r"^runtime\.compiled: unknown field"):
        validate(ProxyRuntime, {"compiled": True}, "runtime.")


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_channel_layer_norm_equals_layer_norm_2d(memory_format: torch.memory_format) -> None:
    torch.manual_seed(0)
    norm = LayerNorm2d(6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-0.5, 0.5)
    x = (torch.randn(2, 6, 5, 7) * 3 + 1).contiguous(memory_format=memory_format)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = norm(x1), ChannelLayerNorm(norm)(x2)
    torch.testing.assert_close(y2, y1, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(y1)
    grads1 = torch.autograd.grad(y1, (x1, norm.weight, norm.bias), g)
    grads2 = torch.autograd.grad(y2, (x2, norm.weight, norm.bias), g)
    for a, b in zip(grads1, grads2):
        torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)


def test_stand_ins_keep_the_parameters_and_their_names(tiny_unetmm: ArchConfig) -> None:
    model = build_model(tiny_unetmm)
    params = dict(model.named_parameters())
    keys = list(model.state_dict())
    swap_stand_ins(model)
    assert not any(isinstance(m, LayerNorm2d) for m in model.modules())
    assert any(isinstance(m, ChannelLayerNorm) for m in model.modules())
    assert list(model.state_dict()) == keys
    assert all(p is params[n] for n, p in model.named_parameters())


def test_fast_runtime_scores_as_eager_float32(
    tiny_arch: ArchConfig, tiny_budget: ProxyBudget
) -> None:
    """channels_last + fused LayerNorm + fused AdamW (the default) follows the eager float32
    run within float rounding: the same curve to 0.05 dB after 30 steps."""
    eager = train_and_eval(tiny_arch, TaskConfig(), tiny_budget, runtime=EAGER, threads=1)
    fast = train_and_eval(tiny_arch, TaskConfig(), tiny_budget, threads=1)
    assert ProxyRuntime().channels_last and ProxyRuntime().fused_norm
    assert [s for s, _ in fast.curve] == [s for s, _ in eager.curve] == [10, 20, 30]
    assert fast.psnr > eager.input_psnr + 0.5  # it learned something to compare
    for (_, a), (_, b) in zip(eager.curve, fast.curve):
        assert b == pytest.approx(a, abs=0.05)
    assert fast.ssim == pytest.approx(eager.ssim, abs=2e-3)
    assert fast.seconds_setup > 0 and 0 < fast.seconds_eval < fast.seconds


@pytest.mark.slow
def test_compiled_proxy_scores_as_eager(tiny_arch: ArchConfig, tiny_budget: ProxyBudget) -> None:
    """torch.compile (CPU inductor, needs a C compiler) trains to the eager curve; slow: the
    first compilation takes tens of seconds."""
    budget = tiny_budget.model_copy(update={"steps": 20})
    eager = train_and_eval(tiny_arch, TaskConfig(), budget, runtime=EAGER, threads=1)
    compiled = train_and_eval(tiny_arch, TaskConfig(), budget, threads=1,
                              runtime=EAGER.model_copy(update={"compile": True}))  # fmt: skip
    for (_, a), (_, b) in zip(eager.curve, compiled.curve, strict=True):
        assert b == pytest.approx(a, abs=0.05)
