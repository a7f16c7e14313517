"""The shared model-test harness: the same contract checks for every model class of the package.

Shaped like transformers' `ModelTesterMixin` and diffusers' `ModelTesterMixin`: a test class per model combines a
tester config from `tests/model_testers.py` (model class, Auto class, tiny config, inputs, loss; shared with
`benchmarks/gpu_check.py`) with this mixin, and sets `expected_slices`: golden values, the first 8 numbers of each
named output for a model built after `torch.manual_seed(0)` on `get_inputs()`, so a change of initialisation or
numerics is seen.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch


class ModelTesterMixin:
    """Checks for a `tests.model_testers.ModelTester` subclass (mixed in beside it)."""

    expected_slices: dict[str, list[float]]
    atol: float = 1e-5
    hidden_states_names: tuple[str, ...] = ("hidden_states",)  # output fields `output_hidden_states` fills
    attentions_names: tuple[str, ...] = ("attentions",)  # output fields `output_attentions` fills
    # transformers' language models return attention weights only under eager attention (SDPA warns and gives None)
    attentions_need_eager: bool = False
    skip_compile_reason: str | None = None  # a cold inductor compile costs minutes of the 15-minute test budget

    # -- helpers ------------------------------------------------------------------------------------------------------
    def main_outputs(self, model, inputs: dict, **kwargs) -> dict[str, torch.Tensor]:
        """The float outputs the checks compare (`output_names`), computed without gradients."""
        with torch.no_grad():
            outputs = model(**inputs, **kwargs)
        return self.named_outputs(outputs, inputs)

    def assert_outputs_close(self, actual: dict, expected: dict, atol: float | None = None, msg: str = "") -> None:
        atol = self.atol if atol is None else atol
        for name in self.output_names:
            torch.testing.assert_close(actual[name], expected[name], atol=atol, rtol=atol, msg=f"{msg} {name}")

    def assert_close_in_low_precision(self, outputs, reference, dtype) -> None:
        problems = self.low_precision_differences(outputs, reference, dtype)
        assert problems == [], problems

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
        self.assert_outputs_close(self.main_outputs(reloaded, inputs), self.main_outputs(model, inputs))

    def test_batching_equivalence(self):
        model = self.make_model()
        together = self.main_outputs(model, self.get_inputs())
        for index in range(self.num_items):
            alone = self.main_outputs(model, self.get_inputs([index]))
            self.assert_outputs_close({name: alone[name][0] for name in alone},
                                      {name: together[name][index] for name in together},
                                      msg=f"item #{index} alone differs from item #{index} in the batch:")

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
        self.assert_outputs_close(self.named_outputs(outputs, inputs),
                                  self.named_outputs(plain, inputs))

    def test_output_attentions_are_distributions_and_eager_equals_sdpa(self):
        model = self.make_model()
        inputs = self.get_inputs()
        with torch.no_grad():
            plain = model(**inputs)
            if self.attentions_need_eager:
                model.set_attn_implementation("eager")
            outputs = model(**inputs, output_attentions=True)
        for name in self.attentions_names:
            assert getattr(plain, name) is None, name
            attentions = getattr(outputs, name)
            assert isinstance(attentions, tuple) and len(attentions) > 0, name
            for attention in attentions:
                assert attention.dim() == 4 and attention.shape[0] == self.num_items, name
                torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:-1]), atol=1e-5, rtol=0)
        # output_attentions runs the eager path: the same outputs as SDPA
        self.assert_outputs_close(self.named_outputs(outputs, inputs),
                                  self.named_outputs(plain, inputs))

    def test_attn_implementation_eager_and_sdpa_load_and_agree(self, tmp_path):
        self.make_model().save_pretrained(tmp_path)
        inputs = self.get_inputs()
        outputs = {}
        for implementation in ("eager", "sdpa"):
            model = self.auto_class.from_pretrained(tmp_path, attn_implementation=implementation).eval()
            assert model.config._attn_implementation == implementation
            outputs[implementation] = self.main_outputs(model, inputs)
        self.assert_outputs_close(outputs["eager"], outputs["sdpa"])

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
            assert all(getattr(outputs, name).dtype == dtype for name in self.output_names)
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
        if self.skip_compile_reason:
            pytest.skip(self.skip_compile_reason)
        model = self.make_model()
        inputs = self.get_inputs()
        torch._dynamo.reset()
        compiled = torch.compile(model)
        self.assert_outputs_close(self.main_outputs(compiled, inputs), self.main_outputs(model, inputs), atol=1e-4)

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
        produced = [getattr(outputs, name) for name in self.output_names if getattr(outputs, name) is not None]
        assert produced and all(torch.isfinite(output).all() for output in produced)

    def test_expected_output_slices(self):
        outputs = self.main_outputs(self.make_model(), self.get_inputs())
        assert set(self.expected_slices) == set(self.output_names)
        for name, expected in self.expected_slices.items():
            actual = outputs[name].flatten()[:8]
            assert len(expected) == 8 and all(math.isfinite(v) for v in expected)
            torch.testing.assert_close(
                actual,
                torch.tensor(expected, dtype=actual.dtype),
                atol=1e-6,
                rtol=1e-4,
                msg=lambda m, name=name, actual=actual: f"{name}: {m}\nactual: {[float(f'{v:.7g}') for v in actual]}",
            )
