"""The colorizer network: shapes, the pretrained encoder's key mapping, and BatchNorm kept frozen."""

import pytest
import torch
from torch import nn

from training.model import Colorizer, ModelSpec, MobileNetV2Encoder, load_imagenet_weights


def test_output_is_quarter_resolution_for_any_multiple_of_32():
    model = Colorizer(ModelSpec(out_channels=7, decoder_width=16)).eval()
    with torch.no_grad():
        out = model(torch.full((2, 1, 96, 160), 50.0))
    assert out.shape == (2, 7, 24, 40)


def test_encoder_batchnorm_stays_in_eval_mode_while_training():
    model = Colorizer(ModelSpec(out_channels=3, decoder_width=16)).train()
    encoder_bn = [m for m in model.encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    decoder_bn = [m for m in model.bottleneck.modules() if isinstance(m, nn.BatchNorm2d)]
    assert encoder_bn and not any(m.training for m in encoder_bn)
    assert decoder_bn and all(m.training for m in decoder_bn)
    before = encoder_bn[0].running_mean.clone()
    model(torch.rand(2, 1, 64, 64) * 100)
    torch.testing.assert_close(encoder_bn[0].running_mean, before)


def test_frozen_encoder_gets_no_gradients():
    model = Colorizer(ModelSpec(out_channels=3, decoder_width=16)).train()
    model.encoder_frozen = True
    model(torch.rand(1, 1, 64, 64) * 100).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.weight.grad is not None


def torchvision_style_state(encoder: MobileNetV2Encoder) -> dict:
    """A fake torchvision checkpoint: the encoder's keys under `features.`, an RGB stem, a classifier."""
    state = {"features." + k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in encoder.features.state_dict().items()}
    state["features.0.0.weight"] = torch.randn(32, 3, 3, 3)
    state["classifier.1.weight"] = torch.randn(1000, 1280)
    return state


def test_imagenet_weights_map_key_for_key_and_gray_stem_equals_replicated_rgb(tmp_path):
    encoder = MobileNetV2Encoder()
    state = torchvision_style_state(encoder)
    torch.save(state, tmp_path / "mnv2.pth")
    load_imagenet_weights(encoder, tmp_path / "mnv2.pth")
    torch.testing.assert_close(encoder.features[5].conv[1][0].weight, state["features.5.conv.1.0.weight"])
    gray = torch.rand(1, 1, 16, 16)
    rgb_out = nn.functional.conv2d(gray.repeat(1, 3, 1, 1), state["features.0.0.weight"], stride=2, padding=1)
    gray_out = nn.functional.conv2d(gray, encoder.features[0][0].weight, stride=2, padding=1)
    torch.testing.assert_close(gray_out, rgb_out, atol=1e-5, rtol=1e-5)


def test_wrong_weights_file_is_rejected(tmp_path):
    torch.save({"features.0.0.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_imagenet_weights(MobileNetV2Encoder(), tmp_path / "bad.pth")
