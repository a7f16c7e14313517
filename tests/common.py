"""The shared model-test harness: the same contract checks for every model class of the package.

Shaped like transformers' `ModelTesterMixin` and diffusers' `ModelTesterMixin`: a test class per model sets a tiny
config and inputs, and inherits every check. A tester sets:

- `model_class`, `auto_class` (the transformers Auto class that must resolve a saved folder to `model_class`);
- `output_name`: the main float output, batch first (compared across save/load, batching, dtypes, compile, ...);
- `expected_slice`: golden values, the first 8 numbers of that output for a model built after
  `torch.manual_seed(0)` on `get_inputs()`, so a change of initialisation or numerics is seen;
- `get_config()`, `get_inputs(indices)` (a batch of the tester's items `indices`, default all) and
  `training_loss(outputs)` (a scalar that reaches every trainable parameter).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch

LOW_PRECISION_TOLERANCE = {torch.bfloat16: 5e-2, torch.float16: 1e-2}  # max |difference| relative to max |fp32|


def _max_relative_difference(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.float() - expected.float()).abs().max() / expected.float().abs().max().clamp(min=1e-6))


class ModelTesterMixin:
    model_class: type
    auto_class: type
    output_name: str
    expected_slice: list[float]
    num_items: int = 4
    atol: float = 1e-5
    hidden_states_names: tuple[str, ...] = ("hidden_states",)  # output fields `output_hidden_states` fills
    attentions_names: tuple[str, ...] = ("attentions",)  # output fields `output_attentions` fills

    # -- what a tester provides ---------------------------------------------------------------------------------------
    def get_config(self):
        raise NotImplementedError

    def get_inputs(self, indices: list[int] | None = None) -> dict:
        raise NotImplementedError

    def training_loss(self, outputs) -> torch.Tensor:
        return outputs.loss

    # -- helpers ------------------------------------------------------------------------------------------------------
    def make_model(self, **config_overrides):
        torch.manual_seed(0)
        config = self.get_config()
        for key, value in config_overrides.items():
            setattr(config, key, value)
        return self.model_class(config).eval()

    def main_output(self, model, inputs: dict, **kwargs) -> torch.Tensor:
        with torch.no_grad():
            return getattr(model(**inputs, **kwargs), self.output_name)

    def comparable_items(self, outputs, reference) -> torch.BoolTensor:
        """Items whose outputs can be compared across precisions: all of them, unless a discrete choice (e.g. a gate
        at a near tie) went another way. (batch,)"""
        return torch.ones(getattr(reference, self.output_name).shape[0], dtype=torch.bool)

    def assert_close_in_low_precision(self, outputs, reference, dtype) -> None:
        comparable = self.comparable_items(outputs, reference)
        assert comparable.float().mean() >= 0.5, "most items took other discrete choices in low precision"
        actual, expected = getattr(outputs, self.output_name), getattr(reference, self.output_name)
        difference = _max_relative_difference(actual[comparable], expected[comparable])
        assert difference <= LOW_PRECISION_TOLERANCE[dtype], f"{dtype}: max relative difference {difference:.3g}"

    def gradients(self, model, inputs: dict) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the same stochastic choices (Gumbel gates, dropout) in both runs
        self.training_loss(model(**inputs)).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    # -- the checks ---------------------------------------------------------------------------------------------------
    def test_save_load_round_trip_through_the_auto_class(self, tmp_path):
        model = self.make_model()
        model.save_pretrained(tmp_path)
        assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
        reloaded = self.auto_class.from_pretrained(tmp_path).eval()
        assert type(reloaded) is self.model_class
        for name, parameter in model.state_dict().items():
            torch.testing.assert_close(reloaded.state_dict()[name], parameter, atol=0, rtol=0, msg=name)
        inputs = self.get_inputs()
        # Reloaded weights are bit-identical, but memory alignment may change the summation order: a tolerance.
        torch.testing.assert_close(self.main_output(reloaded, inputs), self.main_output(model, inputs),
                                   atol=self.atol, rtol=self.atol)

    def test_batching_equivalence(self):
        model = self.make_model()
        together = self.main_output(model, self.get_inputs())
        for index in range(self.num_items):
            alone = self.main_output(model, self.get_inputs([index]))
            torch.testing.assert_close(alone[0], together[index], atol=self.atol, rtol=self.atol,
                                       msg=f"item #{index} alone differs from item #{index} in the batch")

    def test_every_trainable_parameter_gets_a_gradient(self):
        model = self.make_model().train()
        self.gradients(model, self.get_inputs())
        missing = [name for name, p in model.named_parameters()
                   if p.requires_grad and (p.grad is None or not bool(p.grad.abs().sum() > 0))]
        assert missing == [], f"no gradient reaches {missing}"

    def test_init_covers_every_parameter(self):
        model = self.make_model()
        tensors = [t for t in list(model.parameters()) + list(model.buffers()) if t.is_floating_point()]
        with torch.no_grad():
            for tensor in tensors:
                tensor.fill_(float("nan"))
                tensor._is_hf_initialized = False
        for module in model.modules():
            module._is_hf_initialized = False
        model.initialize_weights()
        never_initialised = [name for name, t in list(model.named_parameters()) + list(model.named_buffers())
                             if t.is_floating_point() and torch.isnan(t).any()]
        assert never_initialised == [], f"_init_weights leaves {never_initialised} uninitialised"

    def test_unknown_keyword_raises(self):
        model = self.make_model()
        with pytest.raises(TypeError, match="lables"):
            model(**self.get_inputs(), lables=torch.zeros(self.num_items))

    def test_return_dict_false_gives_the_tuple(self):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            as_dict, as_tuple = model(**inputs), model(**inputs, return_dict=False)
        assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict.to_tuple())
        for from_tuple, from_dict in zip(as_tuple, as_dict.to_tuple()):
            if isinstance(from_dict, torch.Tensor):
                torch.testing.assert_close(from_tuple, from_dict, atol=self.atol, rtol=self.atol)

    def test_output_hidden_states(self):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            plain, outputs = model(**inputs), model(**inputs, output_hidden_states=True)
        for name in self.hidden_states_names:
            assert getattr(plain, name) is None, name
            states = getattr(outputs, name)
            assert isinstance(states, tuple) and len(states) > 1, name
            for state in states:
                assert state.shape[0] == self.num_items and state.is_floating_point() and torch.isfinite(state).all()
        torch.testing.assert_close(getattr(outputs, self.output_name), getattr(plain, self.output_name))

    def test_output_attentions_are_distributions_and_eager_equals_sdpa(self):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            plain, outputs = model(**inputs), model(**inputs, output_attentions=True)
        for name in self.attentions_names:
            assert getattr(plain, name) is None, name
            attentions = getattr(outputs, name)
            assert isinstance(attentions, tuple) and len(attentions) > 0, name
            for attention in attentions:
                assert attention.dim() == 4 and attention.shape[0] == self.num_items, name
                torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]), atol=1e-5, rtol=0)
        # output_attentions runs the eager path: the same outputs as SDPA
        torch.testing.assert_close(getattr(outputs, self.output_name), getattr(plain, self.output_name),
                                   atol=self.atol, rtol=self.atol)

    def test_attn_implementation_eager_and_sdpa_load_and_agree(self, tmp_path):
        self.make_model().save_pretrained(tmp_path)
        inputs = self.get_inputs()
        outputs = {}
        for implementation in ("eager", "sdpa"):
            model = self.auto_class.from_pretrained(tmp_path, attn_implementation=implementation).eval()
            assert model.config._attn_implementation == implementation
            outputs[implementation] = self.main_output(model, inputs)
        torch.testing.assert_close(outputs["eager"], outputs["sdpa"], atol=self.atol, rtol=self.atol)

    @pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
    def test_low_precision_forward_on_cpu(self, dtype, tmp_path):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            reference = model(**inputs)
        model.save_pretrained(tmp_path)
        for low in (model.to(dtype), self.auto_class.from_pretrained(tmp_path, dtype=dtype).eval()):
            assert low.dtype == dtype
            with torch.no_grad():
                outputs = low(**inputs)
            output = getattr(outputs, self.output_name)
            assert output.dtype == dtype and torch.isfinite(output).all()
            self.assert_close_in_low_precision(outputs, reference, dtype)

    def test_bf16_autocast_forward_and_training_step_on_cpu(self):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            reference = model(**inputs)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                outputs = model(**inputs)
        self.assert_close_in_low_precision(outputs, reference, torch.bfloat16)
        model.train()
        before = {name: p.detach().clone() for name, p in model.named_parameters()}
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = self.training_loss(model(**inputs))
        loss.backward()
        gradients = [p.grad for p in model.parameters() if p.grad is not None]
        assert torch.isfinite(loss) and all(torch.isfinite(gradient).all() for gradient in gradients)
        optimizer.step()
        assert any(not torch.equal(before[name], p) for name, p in model.named_parameters())

    def test_torch_compile_equals_eager(self):
        model = self.make_model()
        inputs = self.get_inputs()
        torch._dynamo.reset()
        compiled = torch.compile(model)
        torch.testing.assert_close(
            self.main_output(compiled, inputs), self.main_output(model, inputs), atol=1e-4, rtol=1e-4
        )

    def test_gradient_checkpointing_equals_plain(self):
        model = self.make_model().train()
        assert model.supports_gradient_checkpointing
        inputs = self.get_inputs()
        plain = self.gradients(model, inputs)
        with warnings.catch_warnings():  # transformers 5.24 renames it activation_checkpointing_enable (FutureWarning)
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable()  # the name users know
        assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
        checkpointed = self.gradients(model, inputs)
        assert checkpointed.keys() == plain.keys() and len(plain) > 0
        for name, gradient in plain.items():
            torch.testing.assert_close(checkpointed[name], gradient, atol=1e-5, rtol=1e-4, msg=name)

    def test_dummy_inputs_run(self):
        model = self.make_model()
        with torch.no_grad():
            outputs = model(**model.dummy_inputs)
        assert torch.isfinite(getattr(outputs, self.output_name)).all()

    def test_expected_output_slice(self):
        output = self.main_output(self.make_model(), self.get_inputs())
        actual = output.flatten()[: len(self.expected_slice)]
        assert len(self.expected_slice) == 8 and all(math.isfinite(v) for v in self.expected_slice)
        torch.testing.assert_close(
            actual,
            torch.tensor(self.expected_slice, dtype=actual.dtype),
            atol=1e-6,
            rtol=1e-4,
            msg=lambda m: f"{m}\nactual slice: {[round(v, 6) for v in actual.tolist()]}",
        )
