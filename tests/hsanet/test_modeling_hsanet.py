import json

import pytest
import torch
from rdkit import Chem
from transformers import AutoConfig, AutoModel

from modeling_hsanet import HSANetConfig, HSANetForMolecularPropertyPrediction, HSANetModel
from modeling_hsanet.modeling_hsanet import resolve_problem_type, selective_scan, selective_scan_pytorch
from modeling_hsanet.scan_kernels_hsanet import numba_scan_available, selective_scan_numba
from tests.common import ModelTesterMixin
from tests.model_testers import HSANetForMolecularPropertyPredictionTester, HSANetModelTester


def sequential_selective_scan(u, delta, A, B, C, D):
    """Straightforward reference: one step at a time. Same shapes as `selective_scan`."""
    batch, inner, length = u.shape
    state = u.new_zeros(batch, inner, A.shape[1])
    outputs = []
    for t in range(length):
        state = (
            torch.exp(delta[:, :, t, None] * A) * state + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        )
        outputs.append((state * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(outputs, dim=-1)


def random_scan_inputs(batch=3, inner=5, state=4, length=13, dtype=torch.float64):
    u = torch.randn(batch, inner, length, dtype=dtype)
    delta = torch.nn.functional.softplus(torch.randn(batch, inner, length, dtype=dtype))
    A = -torch.rand(inner, state, dtype=dtype) * 3
    B, C = torch.randn(batch, state, length, dtype=dtype), torch.randn(batch, state, length, dtype=dtype)
    D = torch.randn(inner, dtype=dtype)
    return u, delta, A, B, C, D


def model_layout(u, delta, A, B, C, D):
    """The reference's (batch, channels, length) arguments in the model's (batch, length, channels) layout."""
    return u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), D


@pytest.mark.parametrize("length", [1, 2, 7, 16, 33, 100])
def test_chunked_scan_matches_sequential_reference(length):
    inputs = random_scan_inputs(length=length, dtype=torch.float32)
    torch.testing.assert_close(
        selective_scan_pytorch(*model_layout(*inputs)).transpose(1, 2), sequential_selective_scan(*inputs),
        atol=1e-5, rtol=1e-5,
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 4, 16])
def test_chunked_scan_gradients_match_autograd_through_the_sequential_reference(chunk_size):
    """The hand-written backward equals autograd through the step-by-step loop, for every input, in float64, for
    chunk sizes that do and do not divide the length (11)."""
    inputs = [x.requires_grad_() for x in random_scan_inputs(length=11)]
    grad_y = torch.randn(3, 5, 11, dtype=torch.float64)
    expected = torch.autograd.grad(sequential_selective_scan(*inputs), inputs, grad_y)
    y = selective_scan_pytorch(*model_layout(*inputs), chunk_size=chunk_size).transpose(1, 2)
    for name, got, want in zip("u delta A B C D".split(), torch.autograd.grad(y, inputs, grad_y), expected):
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-10, msg=f"gradient of {name}")


def test_chunked_scan_keeps_only_chunk_boundaries_for_backward():
    """Memory: besides its inputs, the scan keeps one state per chunk for backward (length 256: chunks of 8), not the
    (batch, length, inner, state) tensor of all states."""
    batch, inner, state, length = 2, 8, 4, 256
    inputs = [x.contiguous().requires_grad_() for x in model_layout(*random_scan_inputs(batch, inner, state, length))]
    input_pointers = {x.data_ptr() for x in inputs}
    saved_bytes = []

    def pack(tensor):
        if tensor.data_ptr() not in input_pointers:
            saved_bytes.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        selective_scan_pytorch(*inputs)
    all_states_bytes = batch * length * inner * state * 8
    assert 0 < sum(saved_bytes) <= all_states_bytes / 8, (sum(saved_bytes), all_states_bytes)


def test_scan_ignores_right_padding():
    u, delta, A, B, C, D = random_scan_inputs(length=9)
    padded = [torch.cat([x, torch.randn(*x.shape[:-1], 6, dtype=x.dtype).abs()], dim=-1) for x in (u, delta, B, C)]
    full = selective_scan_pytorch(*model_layout(padded[0], padded[1], A, padded[2], padded[3], D)).transpose(1, 2)
    torch.testing.assert_close(full[..., :9], sequential_selective_scan(u, delta, A, B, C, D), atol=1e-5, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the mamba_ssm kernel path needs CUDA")
def test_cuda_kernel_matches_pytorch_scan():
    pytest.importorskip("mamba_ssm")
    inputs = model_layout(*[x.cuda() for x in random_scan_inputs(length=64, inner=32, state=16, dtype=torch.float32)])
    torch.testing.assert_close(selective_scan(*inputs), selective_scan_pytorch(*inputs), atol=1e-4, rtol=1e-4)


requires_numba = pytest.mark.skipif(not numba_scan_available(), reason="the CPU kernel needs numba")


@requires_numba
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("batch,inner,state,length", [(3, 5, 4, 11), (2, 33, 16, 100), (1, 8, 1, 1), (5, 16, 3, 8)])
def test_numba_scan_matches_float64_reference(threads, batch, inner, state, length):
    """The numba kernel, forward and every gradient, against autograd through the sequential loop in float64; lengths
    that do and do not fill whole chunks, 1 and 2 threads (the batch split over threads)."""
    inputs = random_scan_inputs(batch, inner, state, length)
    grad_y = torch.randn(batch, inner, length, dtype=torch.float64)
    reference_inputs = [x.clone().requires_grad_() for x in inputs]
    expected_y = sequential_selective_scan(*reference_inputs)
    expected = torch.autograd.grad(expected_y, reference_inputs, grad_y)
    kernel_inputs = [x.float().requires_grad_() for x in inputs]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        y = selective_scan_numba(*model_layout(*kernel_inputs)).transpose(1, 2)
        grads = torch.autograd.grad(y, kernel_inputs, grad_y.float())
    finally:
        torch.set_num_threads(previous_threads)
    assert y.dtype == torch.float32
    for name, got, want in zip("y u delta A B C D".split(), (y, *grads), (expected_y, *expected)):
        scale = want.abs().max().item() + 1.0
        torch.testing.assert_close(got.double() / scale, want / scale, atol=2e-6, rtol=0, msg=f"{name}")


@requires_numba
def test_selective_scan_uses_the_numba_kernel_on_cpu_and_keeps_the_dtype():
    inputs = model_layout(*random_scan_inputs(length=20, dtype=torch.float32))
    torch.testing.assert_close(selective_scan(*inputs), selective_scan_numba(*inputs), atol=0, rtol=0)
    half = selective_scan(*(x.bfloat16() for x in inputs))
    assert half.dtype == torch.bfloat16
    reference = selective_scan_pytorch(*(x.bfloat16() for x in inputs))
    torch.testing.assert_close(half.float(), reference.float(), atol=2e-2, rtol=2e-2)  # a bf16 rounding step
    # float64 stays on the pure-PyTorch path, exactly
    double = model_layout(*random_scan_inputs(length=20))
    torch.testing.assert_close(selective_scan(*double), selective_scan_pytorch(*double), atol=0, rtol=0)


@requires_numba
def test_numba_scan_propagates_nan_and_ignores_right_padding():
    u, delta, A, B, C, D = random_scan_inputs(length=9, dtype=torch.float32)
    padded = [torch.cat([x, torch.randn(*x.shape[:-1], 6).abs()], dim=-1) for x in (u, delta, B, C)]
    full = selective_scan_numba(*model_layout(padded[0], padded[1], A, padded[2], padded[3], D)).transpose(1, 2)
    torch.testing.assert_close(full[..., :9], sequential_selective_scan(u, delta, A, B, C, D), atol=1e-5, rtol=1e-5)
    delta = delta.clone()
    delta[1, 2, 4] = float("nan")
    y = selective_scan_numba(*model_layout(u, delta, A, B, C, D)).transpose(1, 2)
    assert torch.isnan(y[1, 2, 4:]).all() and torch.isfinite(y[1, 2, :4]).all() and torch.isfinite(y[0]).all()


@requires_numba
def test_numba_scan_refuses_mismatched_shapes():
    """The kernels do not check bounds, so shapes are checked before: an error naming the argument, never a stray
    read."""
    u, delta, A, B, C, D = model_layout(*random_scan_inputs(length=9, dtype=torch.float32))
    with pytest.raises(ValueError, match="`B` must be a CPU tensor of shape"):
        selective_scan_numba(u, delta, A, B[:, :5], C, D)
    with pytest.raises(ValueError, match="`D` must be"):
        selective_scan_numba(u, delta, A, B, C, D[:2])
    with pytest.raises(ValueError, match="`u` must be"):
        selective_scan_numba(u[0], delta, A, B, C, D)


def embed(model, processor, smiles):
    with torch.no_grad():
        return model(**processor(smiles)).pooler_output


@pytest.mark.parametrize("mode", ["adaptive", "cross_attention", "graph_mamba"])
def test_random_smiles_give_the_same_embedding(tiny_config, processor, mode):
    model = HSANetModel(tiny_config(projector_mode=mode)).eval()
    smiles = "O=S(=O)(Nc1cccs1)c2ccc(Oc3ccccc3c4ccccc4)c(c2)C#N"
    mol = Chem.MolFromSmiles(smiles)
    variants = [Chem.MolToSmiles(mol, doRandom=True) for _ in range(5)]
    assert len(set(variants)) > 1
    embeddings = embed(model, processor, [smiles] + variants)
    assert (embeddings - embeddings[0]).abs().max() <= 1e-5


def test_molecule_alone_equals_molecule_in_a_batch_of_32(tiny_config, processor, cmet_smiles):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1)).eval()
    batch = cmet_smiles[:31] + ["CC(=O)Nc1ccc(O)cc1"]
    with torch.no_grad():
        together = model(**processor(batch))
        for index in (0, 7, 31):
            alone = model(**processor(batch[index]))
            assert (alone.logits[0] - together.logits[index]).abs().max() <= 1e-5
            assert (alone.pooler_output[0] - together.pooler_output[index]).abs().max() <= 1e-5
            assert torch.equal(alone.projector_choices[0], together.projector_choices[index])


def test_outputs_shapes_and_projector_report(tiny_config, processor):
    config = tiny_config()
    model = HSANetModel(config).eval()
    outputs = model(**processor(["CCO", "c1ccccc1", "[Na+].[Cl-]"]))
    num_tokens = config.num_levels * config.num_query_tokens + config.num_motif_tokens
    assert outputs.last_hidden_state.shape == (3, num_tokens, config.hidden_size)
    assert outputs.pooler_output.shape == (3, config.hidden_size)
    assert outputs.projector_choices.shape == (3, config.num_levels)
    assert torch.equal(outputs.projector_choices, outputs.gate_logits.argmax(-1))
    assert outputs.router_logits.shape == (3, num_tokens, config.num_fusion_experts)
    assert outputs.aux_loss.ndim == 0 and outputs.aux_loss > 0


@pytest.mark.parametrize("mode, choice", [("cross_attention", 0), ("graph_mamba", 1)])
def test_forced_projector_modes(tiny_config, processor, mode, choice):
    model = HSANetModel(tiny_config(projector_mode=mode)).eval()
    outputs = model(**processor(["CCO", "c1ccccc1"]))
    assert (outputs.projector_choices == choice).all() and outputs.gate_logits is None
    unused = "graph_mamba" if mode == "cross_attention" else "cross_attention"
    assert getattr(model.projector, unused) is None


def test_mlp_fusion_ablation(tiny_config, processor):
    model = HSANetModel(tiny_config(fusion="mlp")).eval()
    outputs = model(**processor(["CCO"]))
    assert outputs.router_logits is None and outputs.aux_loss == 0


def test_gradients_reach_every_trainable_parameter(tiny_config, processor, cmet_smiles):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1)).train()
    batch = processor(cmet_smiles[:24], labels=[float(i) for i in range(24)])
    model(**batch).loss.backward()
    missing = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert missing == []


def test_gumbel_gate_is_hard_in_training_and_argmax_in_eval(tiny_config, processor):
    model = HSANetModel(tiny_config()).train()
    batch = processor(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1"] * 4)
    choices = torch.stack([model(**batch).projector_choices for _ in range(8)])
    assert set(choices.unique().tolist()) == {0, 1}  # sampled: both projectors get picked
    model.eval()
    first, second = model(**batch), model(**batch)
    assert torch.equal(first.projector_choices, second.projector_choices)
    torch.testing.assert_close(first.projector_choices, first.gate_logits.argmax(-1), atol=0, rtol=0)


def test_gumbel_weights_are_one_hot_forward_and_soft_backward(tiny_config, processor):
    """In training each molecule's level tokens are exactly its chosen projector's tokens (one-hot weights), and the
    gate still gets a gradient (the soft part of the straight-through estimator)."""
    config = tiny_config()
    model = HSANetModel(config).train()
    projected = {}  # (kind, level) -> tokens of that projector for the whole batch
    for kind, choice in (("cross_attention", 0), ("graph_mamba", 1)):
        for level, projector in enumerate(getattr(model.projector, kind)):
            projector.register_forward_hook(
                lambda module, args, output, key=(choice, level): projected.__setitem__(key, output[0].detach())
            )
    captured = {}
    model.projector.register_forward_hook(lambda module, args, output: captured.update(output=output))
    batch = processor(["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "c1ccncc1"] * 3)
    outputs = model(**batch)
    tokens, choices = captured["output"][0].detach(), outputs.projector_choices
    assert set(choices.unique().tolist()) == {0, 1}
    q = config.num_query_tokens
    for level in range(config.num_levels):
        for item in range(len(choices)):
            chosen = projected[(int(choices[item, level]), level)][item]
            torch.testing.assert_close(tokens[item, level * q : (level + 1) * q], chosen, atol=1e-7, rtol=0)
    outputs.last_hidden_state.pow(2).mean().backward()
    assert all(gate.weight.grad is not None and gate.weight.grad.abs().sum() > 0 for gate in model.projector.gates)


def test_regression_loss_masks_missing_labels(tiny_config, processor):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=2, problem_type="regression")).eval()
    labels = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0], [0.5, 0.25]])
    outputs = model(**processor(["CCO", "CCN", "CCC"]), labels=labels)
    observed = ~labels.isnan()
    expected = torch.nn.functional.mse_loss(outputs.logits[observed], labels[observed])
    torch.testing.assert_close(outputs.loss, expected + model.config.router_aux_loss_coef * outputs.aux_loss)


def test_classification_losses(tiny_config, processor):
    single = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=3)).eval()
    outputs = single(**processor(["CCO", "CCN"]), labels=torch.tensor([2, 0]))
    assert torch.isfinite(outputs.loss) and outputs.logits.shape == (2, 3)
    multi = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=2, problem_type="multi_label_classification"))
    outputs = multi.eval()(**processor(["CCO", "CCN"]), labels=torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    assert torch.isfinite(outputs.loss)


def test_all_nan_labels_raise(tiny_config, processor):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1)).eval()
    with pytest.raises(ValueError, match="every label in the batch is NaN"):
        model(**processor(["CCO", "CCN"]), labels=torch.tensor([float("nan"), float("nan")]))


def test_inconsistent_batches_raise(tiny_config, processor):
    model = HSANetModel(tiny_config()).eval()
    batch = dict(processor(["CCO", "CCN"]))
    with pytest.raises(ValueError, match="`num_atoms` sums to 7"):
        model(**{**batch, "num_atoms": torch.tensor([3, 4])})
    with pytest.raises(ValueError, match="empty batch"):
        model(**{**batch, "num_atoms": torch.tensor([], dtype=torch.long)})
    bad_features = batch["atom_features"].clone()
    bad_features[0, 2] = 99
    with pytest.raises(ValueError, match="atom_features column 2 has values outside"):
        model(**{**batch, "atom_features": bad_features})


def test_mismatched_config_raises(tmp_path, tiny_config):
    HSANetModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(Exception, match="ignore_mismatched_sizes"):
        AutoModel.from_pretrained(tmp_path, config=tiny_config(hidden_size=64))


def test_routing_survives_an_autocast_that_keeps_softmax_in_float32(tiny_config, processor, monkeypatch):
    """CUDA autocast runs softmax in float32 while the router's linear gives bf16 (CPU autocast keeps both bf16):
    on an H200 that broke `SourceAwareFusion` with `scatter(): Expected self.dtype to be equal to src.dtype`."""
    model = HSANetModel(tiny_config()).eval()
    batch = processor(["CCO", "c1ccccc1O"])
    with torch.no_grad():
        reference = model(**batch).last_hidden_state
        model.to(torch.bfloat16)
        softmax = torch.Tensor.softmax
        monkeypatch.setattr(torch.Tensor, "softmax", lambda self, dim: softmax(self, dim, dtype=torch.float32))
        fused = model(**batch).last_hidden_state
    assert fused.dtype == torch.bfloat16
    torch.testing.assert_close(fused.float(), reference, atol=2e-2, rtol=0)


def test_problem_type_is_decided_once_and_written_to_the_config(tiny_config, processor, tmp_path):
    model = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=2)).eval()
    assert model.config.problem_type is None and resolve_problem_type(model.config) == "single_label_classification"
    model(**processor(["CCO", "CCN"]), labels=torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert model.config.problem_type == "multi_label_classification"
    model.save_pretrained(tmp_path)
    assert AutoConfig.from_pretrained(tmp_path).problem_type == "multi_label_classification"
    regression = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=1)).eval()
    regression(**processor(["CCO"]), labels=torch.tensor([0.5]))
    assert regression.config.problem_type == "regression"
    classes = HSANetForMolecularPropertyPrediction(tiny_config(num_labels=3)).eval()
    classes(**processor(["CCO"]), labels=torch.tensor([2]))
    assert classes.config.problem_type == "single_label_classification"


def test_hidden_states_and_attentions_follow_the_atom_order_of_the_inputs(tiny_config, processor):
    """The same molecule with its atom rows permuted: every per-atom output is permuted alike."""
    model = HSANetModel(tiny_config(projector_mode="adaptive")).eval()
    batch = dict(processor(["CC(=O)Nc1ccc(O)cc1"]))
    permutation = torch.randperm(int(batch["num_atoms"][0]))  # new atom i = old atom permutation[i]
    inverse = torch.argsort(permutation)
    permuted = {**batch, "edge_index": inverse[batch["edge_index"]]}
    for key in ("atom_features", "structure_rank", "distance_to_previous", "distance_to_next"):
        permuted[key] = batch[key][permutation]
    with torch.no_grad():
        before = model(**batch, output_hidden_states=True, output_attentions=True)
        after = model(**permuted, output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(after.last_hidden_state, before.last_hidden_state, atol=1e-5, rtol=1e-5)
    assert len(after.hidden_states) == model.config.num_levels
    for old, new in zip(before.hidden_states, after.hidden_states):
        torch.testing.assert_close(new[0], old[0, permutation], atol=1e-5, rtol=1e-5)
    assert len(after.attentions) == model.config.num_levels + 1  # the last one is the motif branch's
    for old, new in zip(before.attentions[:-1], after.attentions[:-1]):
        torch.testing.assert_close(new, old[..., permutation], atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------------------------
# The shared harness (tests/common.py) on both HSA-Net classes
# ---------------------------------------------------------------------------------------------------------------------
class BothScanDirections:
    """The harness's golden slices were recorded with `graph_mamba_bidirectional=True` (the default before
    2026-11-27): kept there so they guard the same computation. The one-direction default has its own tests
    (`test_one_direction_graph_mamba_has_one_scan_and_round_trips`, the per-direction reference below) and runs in
    every other test built from `HSANET_TINY`."""

    def get_config(self):
        config = super().get_config()
        config.graph_mamba_bidirectional = True
        return config


class TestHSANetModelHarness(BothScanDirections, HSANetModelTester, ModelTesterMixin):
    expected_slices = {"last_hidden_state": [-0.001069086, 0.01327531, 0.01571592, -0.04939011, 0.03274994,
                                             0.04994961, -0.02039574, 0.0280204]}


class TestHSANetForMolecularPropertyPredictionHarness(BothScanDirections, HSANetForMolecularPropertyPredictionTester,
                                                      ModelTesterMixin):
    skip_compile_reason = ("the encoder is compiled by TestHSANetModelHarness; the head adds a Linear layer and a loss"
                           " (a cold compile costs ~40 s of the 15-minute test budget)")
    expected_slices = {"logits": [-4.116184e-05, -0.003004631, -9.415951e-05, -0.001974019, -0.0004667671,
                                  -0.002893551, -1.71203e-05, -0.002541597]}


def test_one_direction_graph_mamba_has_one_scan_and_round_trips(tmp_path):
    """`graph_mamba_bidirectional=False` (the default): one Mamba block per projector, gradients reach it, the choice
    is saved, and old configs (no such field) keep both directions."""
    from tests.model_testers import HSANET_TINY

    torch.manual_seed(0)
    config = HSANetConfig(**HSANET_TINY, projector_mode="graph_mamba", graph_mamba_bidirectional=False)
    model = HSANetModel(config)
    assert all(projector.backward_scan is None for projector in model.projector.graph_mamba)
    assert not any("backward_scan" in name for name, _ in model.named_parameters())
    inputs = model.dummy_inputs
    outputs = model(**inputs)
    outputs.last_hidden_state.pow(2).mean().backward()
    scan = model.projector.graph_mamba[0].forward_scan
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in scan.parameters())
    model.eval()
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.graph_mamba_bidirectional is False
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).last_hidden_state, model(**inputs).last_hidden_state,
                                   atol=1e-5, rtol=1e-5)
    legacy = config.to_dict()
    legacy.pop("graph_mamba_bidirectional")
    assert HSANetConfig.from_dict(legacy).graph_mamba_bidirectional is True
    legacy_dir = tmp_path / "legacy"  # a config.json saved before the field existed: its model scans both ways
    legacy_dir.mkdir()
    (legacy_dir / "config.json").write_text(json.dumps(legacy))
    assert AutoConfig.from_pretrained(legacy_dir).graph_mamba_bidirectional is True
    assert HSANetConfig.from_dict({**legacy, "graph_mamba_bidirectional": False}).graph_mamba_bidirectional is False
    with pytest.raises(ValueError, match="graph_mamba_bidirectional"):
        HSANetConfig(**HSANET_TINY, graph_mamba_bidirectional="no")
    # the default (new configs): one direction, kept through save_pretrained -> from_pretrained
    assert HSANetConfig().graph_mamba_bidirectional is False
    default_dir = tmp_path / "default"
    HSANetModel(HSANetConfig(**HSANET_TINY)).save_pretrained(default_dir)
    assert json.loads((default_dir / "config.json").read_text())["graph_mamba_bidirectional"] is False
    default = AutoModel.from_pretrained(default_dir)
    assert default.config.graph_mamba_bidirectional is False
    assert all(projector.backward_scan is None for projector in default.projector.graph_mamba)


# ---------------------------------------------------------------------------------------------------------------------
# Graph-Mamba projector: the fused forward (position-wise layers on the stacked atoms, both directions in one product)
# against a direct per-direction reference
# ---------------------------------------------------------------------------------------------------------------------
def reference_scan_block(scan, sequence, distance):
    """`StructureAwareSelectiveScan` written out step by step on padded sequences (batch, length, hidden): in_proj,
    the `nn.Conv1d` module on (batch, inner, length), SiLU, x_proj, dt_proj + the distance bias, softplus, the
    sequential scan loop, the gate and out_proj."""
    length = sequence.shape[1]
    x, gate = scan.in_proj(sequence).chunk(2, dim=-1)
    x = torch.nn.functional.silu(scan.conv1d(x.transpose(1, 2))[..., :length])  # (batch, inner, length)
    dt, B, C = scan.x_proj(x.transpose(1, 2)).split([scan.dt_rank, scan.state_size, scan.state_size], dim=-1)
    delta = torch.nn.functional.softplus(scan.dt_proj(dt) + scan.distance_dt_bias[distance])
    A = -torch.exp(scan.A_log.float())  # as the model (and Mamba): A in float32
    y = sequential_selective_scan(x, delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), scan.D)
    return scan.out_proj(y.transpose(1, 2) * torch.nn.functional.silu(gate))


def reference_graph_mamba(projector, node_states, num_atoms, structure_rank, edge_index, distance_to_previous,
                          distance_to_next):
    """`GraphMambaProjector` as a plain loop over directions: neighbour mean, norm, each direction's block on its own
    padded sequences (forward: atom at its structure rank; backward: reversed over its molecule), summed onto the
    states, then the query pooling over the forward sequences."""
    batch, max_atoms = num_atoms.shape[0], int(num_atoms.max())
    atom_batch = torch.repeat_interleave(torch.arange(batch), num_atoms)
    source, target = edge_index
    sums = torch.zeros_like(node_states).index_add(0, target, node_states[source])
    counts = torch.zeros(node_states.shape[0], dtype=node_states.dtype).index_add(
        0, target, torch.ones(target.shape[0], dtype=node_states.dtype))
    neighbours = sums / counts.clamp(min=1)[:, None]
    states = projector.norm(node_states + projector.neighbour_proj(neighbours))

    def dense(values, position):
        out = values.new_zeros((batch, max_atoms) + values.shape[1:])
        out[atom_batch, position] = values
        return out

    scanned = states
    backward_position = num_atoms[atom_batch] - 1 - structure_rank
    for scan, position, distance in ((projector.forward_scan, structure_rank, distance_to_previous),
                                     (projector.backward_scan, backward_position, distance_to_next)):
        if scan is not None:
            scanned = scanned + reference_scan_block(scan, dense(states, position), dense(distance, position))[
                atom_batch, position]
    mask = torch.arange(max_atoms)[None, :] < num_atoms[:, None]
    return projector.pool(dense(scanned, structure_rank), mask)[0]


@pytest.mark.parametrize(
    "bidirectional, dtype, use_kernels",
    [(True, torch.float32, True), (True, torch.float32, False), (True, torch.float64, False),
     (False, torch.float32, True), (False, torch.float64, False)],
)
def test_graph_mamba_projector_matches_per_direction_reference(processor, bidirectional, dtype, use_kernels):
    """The fused forward (in_proj / gate / out_proj of all directions on the stacked atoms, one product each; one
    gather to the padded sequences) gives the reference's tokens and the same gradient for every parameter and the
    node states, on molecules of different sizes (one of a single atom); `StructureAwareSelectiveScan.forward` (the
    public per-direction block) gives the reference block."""
    from modeling_hsanet.modeling_hsanet import GraphBatchLayout
    from tests.model_testers import HSANET_TINY

    torch.manual_seed(0)
    config = HSANetConfig(**{**HSANET_TINY, "mamba_expand": 2}, projector_mode="graph_mamba",
                          graph_mamba_bidirectional=bidirectional, use_mamba_kernels=use_kernels)
    projector = HSANetModel(config).projector.graph_mamba[0].to(dtype)
    with torch.no_grad():  # away from the initialisation (zero distance bias, conv bias, ...) so every term counts
        for parameter in projector.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    batch = processor(["CC(=O)Nc1ccc(O)cc1", "C", "CCO", "CCN(CC)CCOC(=O)c1ccc(N)cc1", "c1ccccc1O"])
    clip = config.max_scan_distance
    structure = dict(edge_index=batch["edge_index"],
                     distance_to_previous=batch["distance_to_previous"].clamp(max=clip),
                     distance_to_next=batch["distance_to_next"].clamp(max=clip))
    node_states = torch.randn(int(batch["num_atoms"].sum()), config.hidden_size, dtype=dtype, requires_grad=True)
    layout = GraphBatchLayout(batch["num_atoms"], batch["structure_rank"])
    weights = torch.randn(batch["num_atoms"].shape[0], config.num_query_tokens, config.hidden_size, dtype=dtype)
    inputs = [node_states, *projector.parameters()]

    tokens, _ = projector(node_states, layout, **structure)
    grads = torch.autograd.grad((tokens * weights).sum(), inputs)
    expected = reference_graph_mamba(projector, node_states, batch["num_atoms"], batch["structure_rank"], **structure)
    expected_grads = torch.autograd.grad((expected * weights).sum(), inputs)

    tolerance = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)
    assert tokens.dtype == dtype and tokens.shape == expected.shape
    torch.testing.assert_close(tokens, expected, **tolerance)
    names = ["node_states"] + [name for name, _ in projector.named_parameters()]
    for name, got, want in zip(names, grads, expected_grads):
        # A = -exp(A_log.float()) in both, so A_log's gradient passes through float32 even in a float64 model
        atol, rtol = (1e-6, 1e-5) if name.endswith("A_log") else (tolerance["atol"], tolerance["rtol"])
        torch.testing.assert_close(got, want, atol=atol * max(want.abs().max().item(), 1), rtol=rtol,
                                   msg=lambda message, name=name: f"gradient of {name}: {message}")
    # the public per-direction block, on padded sequences
    sequence = torch.randn(3, 6, config.hidden_size, dtype=dtype)
    distance = torch.randint(0, clip + 1, (3, 6))
    with torch.no_grad():
        torch.testing.assert_close(projector.forward_scan(sequence, distance),
                                   reference_scan_block(projector.forward_scan, sequence, distance), **tolerance)
