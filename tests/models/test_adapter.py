"""The parallel bottleneck adapter: ParBn's formula, output-preserving init, hooks on/off, save/load checks.

The reference is the ``adapters`` library's ``ParBnConfig()``. That package (1.3.0) requires
``transformers~=4.57.6`` and cannot be installed beside our transformers 5.x, so the expected
values are computed by hand from a layer's own submodules:
``LayerNorm(dropout(dense(intermediate(x))) + 4.0 * up(relu(down(x))) + x)`` with ``x`` the
attention sub-layer's output.
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel, XLMRobertaConfig, XLMRobertaModel

from modsent.errors import ModsentError
from modsent.models.adapter import (
    AdapterError,
    AdapterMismatchError,
    BottleneckAdapter,
    ParallelAdapter,
    ParBnConfig,
    UnsupportedArchitectureError,
    count_parameters,
    encoder_fingerprint,
    ffn_output_modules,
)

SIZES = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=40)


def _bert(seed: int = 0, **overrides) -> BertModel:
    torch.manual_seed(seed)
    return BertModel(BertConfig(**{**SIZES, **overrides})).eval()


def _xlmr(seed: int = 0) -> XLMRobertaModel:
    torch.manual_seed(seed)
    return XLMRobertaModel(XLMRobertaConfig(**SIZES, pad_token_id=1)).eval()


def _inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, SIZES["vocab_size"], (4, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[3, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def _randomise(adapter: ParallelAdapter, seed: int = 3) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in adapter.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * 0.2)


@pytest.mark.parametrize("build", [_bert, _xlmr], ids=["bert", "xlm-roberta"])
def test_untrained_adapter_leaves_every_output_bit_identical(build):
    model, inputs = build(), _inputs()
    with torch.no_grad():
        before = model(**inputs).last_hidden_state
        adapter = ParallelAdapter.for_model(model).attach(model)
        after = model(**inputs).last_hidden_state
    assert adapter.attached and len(adapter.layers) == SIZES["num_hidden_layers"]
    assert torch.equal(before, after)


def test_shape_and_init_follow_parbn():
    adapter = ParallelAdapter.for_model(_bert())
    assert adapter.bottleneck_size == SIZES["hidden_size"] // 2  # reduction factor 2
    for layer in adapter.layers:
        assert layer.scaling == 4.0
        assert layer.down.weight.shape == (16, 32) and layer.up.weight.shape == (32, 16)
        # mam_adapter init: Kaiming-uniform(a=sqrt(5)) down weight (bound 1/sqrt(fan_in)), zero bias, zero up.
        assert 0 < layer.down.weight.abs().max() <= 1 / math.sqrt(32)
        assert layer.down.weight.std() > 0.5 / math.sqrt(3 * 32)
        assert torch.count_nonzero(layer.down.bias) == 0
        assert torch.count_nonzero(layer.up.weight) == 0 and torch.count_nonzero(layer.up.bias) == 0
    assert ParBnConfig(reduction_factor=16).bottleneck_size(768) == 48


@pytest.mark.parametrize("build", [_bert, _xlmr], ids=["bert", "xlm-roberta"])
def test_layer_output_equals_the_parbn_formula(build):
    model = build()
    adapter = ParallelAdapter.for_model(model).attach(model)
    _randomise(adapter)
    hidden = torch.randn(2, 6, SIZES["hidden_size"], generator=torch.Generator().manual_seed(5))
    for index, layer in enumerate(model.encoder.layer):
        with torch.no_grad():
            out = layer(hidden)
            got = out[0] if isinstance(out, tuple) else out
            x = layer.attention(hidden)[0]  # the FFN block's input
            ffn_out = layer.output.dropout(layer.output.dense(layer.intermediate(x)))
            bottleneck = adapter.layers[index]
            adapter_out = 4.0 * torch.nn.functional.linear(
                torch.relu(torch.nn.functional.linear(x, bottleneck.down.weight, bottleneck.down.bias)),
                bottleneck.up.weight, bottleneck.up.bias)
            expected = layer.output.LayerNorm(ffn_out + adapter_out + x)
            plain = layer.output.LayerNorm(ffn_out + x)
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
        assert (got - plain).abs().max() > 1e-2  # the adapter really contributes


def test_disabled_and_detached_adapter_give_the_base_outputs():
    model, inputs = _bert(), _inputs()
    with torch.no_grad():
        base = model(**inputs).last_hidden_state
        adapter = ParallelAdapter.for_model(model).attach(model)
        _randomise(adapter)
        adapted = model(**inputs).last_hidden_state
        with adapter.disabled():
            off = model(**inputs).last_hidden_state
        assert adapter.enabled
        adapter.detach()
        detached = model(**inputs).last_hidden_state
    assert not torch.allclose(adapted, base, atol=1e-3)
    assert torch.equal(off, base) and torch.equal(detached, base)
    assert not adapter.attached


def test_adapter_grads_flow_and_base_state_dict_is_unchanged():
    model, inputs = _bert(), _inputs()
    keys_before = set(model.state_dict())
    for param in model.parameters():
        param.requires_grad_(False)
    adapter = ParallelAdapter.for_model(model).attach(model)
    model(**inputs).last_hidden_state.pow(2).mean().backward()
    assert set(model.state_dict()) == keys_before  # the adapter is not written into the base's weights
    # With up = 0, only the up-projections get a gradient on the first step (down's grad is up^T·g = 0).
    assert all(layer.up.weight.grad is not None and layer.up.weight.grad.abs().sum() > 0 for layer in adapter.layers)
    assert all(p.grad is None for p in model.parameters())
    assert count_parameters(adapter) == 3 * (32 * 16 + 16 + 16 * 32 + 32)


def test_bottleneck_adapter_is_the_scaled_relu_mlp():
    module = BottleneckAdapter(8, 4, scaling=4.0)
    torch.nn.init.normal_(module.up.weight)
    x = torch.randn(3, 8)
    expected = 4.0 * (torch.relu(x @ module.down.weight.T + module.down.bias) @ module.up.weight.T + module.up.bias)
    torch.testing.assert_close(module(x), expected)


def test_save_load_roundtrip_and_base_mismatch_refused(tmp_path):
    model = _bert(seed=0)
    model.save_pretrained(tmp_path / "base")
    _bert(seed=1).save_pretrained(tmp_path / "other")
    adapter = ParallelAdapter.for_model(model)
    _randomise(adapter)
    adapter.save(tmp_path / "adapter", base_path=tmp_path / "base", metadata={"lang": "deu_Latn"})

    loaded = ParallelAdapter.load(tmp_path / "adapter", base_path=tmp_path / "base")
    assert loaded.metadata == {"lang": "deu_Latn"}
    for (name, a), (_, b) in zip(adapter.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    config = ParallelAdapter.read_config(tmp_path / "adapter")
    assert config["base"]["fingerprint"] == encoder_fingerprint(tmp_path / "base")
    assert (config["reduction_factor"], config["scaling"], config["bottleneck_size"]) == (2.0, 4.0, 16)

    with pytest.raises(AdapterMismatchError, match="trained on the encoder .*base.*not on .*other") as info:
        ParallelAdapter.load(tmp_path / "adapter", base_path=tmp_path / "other")
    assert isinstance(info.value, ModsentError)
    # The fingerprint is of the weights, not the path: a copy of the base is accepted.
    (tmp_path / "copy").mkdir()
    for file in (tmp_path / "base").iterdir():
        (tmp_path / "copy" / file.name).write_bytes(file.read_bytes())
    ParallelAdapter.load(tmp_path / "adapter", base_path=tmp_path / "copy")


def test_attach_refuses_another_shape_and_unsupported_models(tmp_path):
    adapter = ParallelAdapter.for_model(_bert())
    with pytest.raises(AdapterMismatchError, match="3 layers of hidden size 32, the encoder 2 layers"):
        adapter.attach(_bert(num_hidden_layers=2))
    adapter.attach(_bert())
    with pytest.raises(RuntimeError, match="already attached"):
        adapter.attach(_bert())
    distil = DistilBertModel(DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=4, hidden_dim=64))
    with pytest.raises(UnsupportedArchitectureError, match="BERT-family"):
        ffn_output_modules(distil)
    with pytest.raises(AdapterError, match="not an adapter directory"):
        ParallelAdapter.load(tmp_path)
    with pytest.raises(AdapterError, match="no \\*.safetensors"):
        encoder_fingerprint(tmp_path)
