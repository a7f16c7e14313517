"""conversion/convert_molecule_gin_to_hsanet.py: key maps, exact tensor copies, clear errors, and the converted
encoder against independent re-implementations of MoleculeSTM's and pretrain-gnns' GIN forward."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

import modeling_hsanet  # noqa: F401  (registers the Auto classes)
from conversion.convert_molecule_gin_to_hsanet import (
    PRETRAIN_GNNS,
    ConversionError,
    convert,
    featurizer_differences,
    featurizer_differences_from_ogb,
    main,
    moleculestm_rules,
    ogb_reference_atom_row,
    ogb_reference_bond_row,
    parse_config_overrides,
    pretrain_gnns_rules,
)
from modeling_hsanet.featurization_hsanet import FEATURE_SCHEMES, FeatureScheme

HIDDEN, LAYERS = 32, 2
SMALL = dict(num_attention_heads=2, num_query_tokens=4, mamba_d_state=4, fusion_intermediate_size=64,
             num_motif_tokens=2)
OGB = FEATURE_SCHEMES["ogb"]
HU = FEATURE_SCHEMES["pretrain_gnns"]


def random_state_dict(rules) -> dict[str, torch.Tensor]:
    """Random tensors under the original key names, shaped as the key map expects."""
    generator = torch.Generator().manual_seed(1)
    state_dict = {}
    for rule in rules:
        for key, shape in zip(rule.sources, rule.shapes):
            if key.endswith("num_batches_tracked"):
                state_dict[key] = torch.tensor(7)
            elif key.endswith("running_var"):
                state_dict[key] = torch.rand(shape, generator=generator) + 0.5
            else:
                state_dict[key] = torch.randn(shape, generator=generator)
    return state_dict


def moleculestm_state_dict() -> dict[str, torch.Tensor]:
    return random_state_dict(moleculestm_rules(HIDDEN, LAYERS, OGB.atom_vocabulary_sizes, OGB.bond_vocabulary_sizes))


def pretrain_gnns_state_rules():
    return pretrain_gnns_rules(HIDDEN, LAYERS, HU.atom_vocabulary_sizes, HU.bond_vocabulary_sizes)


def as_gnn_graphpred(state_dict) -> dict[str, torch.Tensor]:
    """What MoleculeSTM saves as molecule_model.pth: GNN_graphpred wrapping the GNN, with its graph-level head."""
    wrapped = {f"molecule_node_model.{key}": value for key, value in state_dict.items()}
    wrapped["graph_pred_linear.weight"] = torch.randn(1, HIDDEN)
    wrapped["graph_pred_linear.bias"] = torch.randn(1)
    return wrapped


@pytest.fixture
def save(tmp_path):
    def write(state_dict, name="checkpoint.pth"):
        path = tmp_path / name
        torch.save(state_dict, path)
        return path

    return write


def test_key_maps_use_the_original_names():
    """Written from reading MoleculeSTM's molecule_gnn_model.py and pretrain-gnns' chem/model.py (layer 1 of 2)."""
    moleculestm = {key for rule in moleculestm_rules(HIDDEN, LAYERS, OGB.atom_vocabulary_sizes,
                                                     OGB.bond_vocabulary_sizes) for key in rule.sources}
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    assert {key for key in moleculestm if key.startswith("gnns.1.") or key.startswith("batch_norms.1.")} == {
        "gnns.1.eps", "gnns.1.mlp.0.weight", "gnns.1.mlp.0.bias", "gnns.1.mlp.3.weight", "gnns.1.mlp.3.bias",
        *(f"gnns.1.mlp.1.{name}" for name in bn), *(f"batch_norms.1.{name}" for name in bn),
        *(f"gnns.1.bond_encoder.bond_embedding_list.{k}.weight" for k in range(3))}
    assert {key for key in moleculestm if key.startswith("atom_encoder.")} == {
        f"atom_encoder.atom_embedding_list.{k}.weight" for k in range(9)}
    pretrain = {key for rule in pretrain_gnns_state_rules() for key in rule.sources}
    assert {key for key in pretrain if not key.startswith(("gnns.0.", "batch_norms.0."))} == {
        "x_embedding1.weight", "x_embedding2.weight", "gnns.1.mlp.0.weight", "gnns.1.mlp.0.bias",
        "gnns.1.mlp.2.weight", "gnns.1.mlp.2.bias", "gnns.1.edge_embedding1.weight", "gnns.1.edge_embedding2.weight",
        *(f"batch_norms.1.{name}" for name in bn)}
    # the original table shapes (chem/model.py: num_atom_type 120, num_chirality_tag 3, num_bond_type 6,
    # num_bond_direction 3)
    shapes = {key: shape for rule in pretrain_gnns_state_rules() for key, shape in zip(rule.sources, rule.shapes)}
    assert (shapes["x_embedding1.weight"], shapes["x_embedding2.weight"]) == ((120, HIDDEN), (3, HIDDEN))
    assert (shapes["gnns.1.edge_embedding1.weight"], shapes["gnns.1.edge_embedding2.weight"]) == (
        (6, HIDDEN), (3, HIDDEN))


def test_every_converted_tensor_equals_its_source(save, tmp_path, capsys):
    source = moleculestm_state_dict()
    checkpoint = save(as_gnn_graphpred(source))
    output = tmp_path / "hsanet"
    overrides = ",".join(f"{key}={value}" for key, value in SMALL.items())
    assert main(["--checkpoint", str(checkpoint), "--output", str(output), "--config-overrides", overrides]) == 0
    printed = capsys.readouterr().out
    assert "FRESHLY INITIALISED" in printed and "projector" in printed and "fusion" in printed
    assert "molecule_node_model." in printed and "ignored graph_pred_linear.weight" in printed
    assert (output / "model.safetensors").is_file()

    model = AutoModel.from_pretrained(output)
    assert type(model).__name__ == "HSANetModel"
    assert (model.config.hidden_size, model.config.num_gnn_layers, model.config.num_query_tokens) == (
        HIDDEN,
        LAYERS,
        4,
    )
    target = model.state_dict()
    rules = moleculestm_rules(HIDDEN, LAYERS, OGB.atom_vocabulary_sizes, OGB.bond_vocabulary_sizes)
    for rule in rules:
        rows = 0
        for key in rule.sources:  # a concatenated table: each source is a block of rows
            block = source[key]
            got = target[rule.target][rows : rows + block.shape[0]] if len(rule.sources) > 1 else target[rule.target]
            assert torch.equal(got, block), f"{rule.target} <- {key}"
            rows += block.shape[0] if block.dim() else 0
        if len(rule.sources) > 1:
            assert rows == target[rule.target].shape[0]
    assert {rule.target for rule in rules} == {key for key in target if key.startswith("encoder.")}


def reference_moleculestm_levels(sd, atom_features, edge_index, bond_features, num_layers):
    """MoleculeSTM's GIN (eval mode) from its equations: OGB encoders sum one table per column; a layer is
    MLP((1 + eps) x_i + sum_{j->i} relu(x_j + e_ji)), MLP = Linear, BatchNorm, ReLU, Linear; then BatchNorm, and
    ReLU except after the last layer. Returns [atom embedding, layer 1, ..., layer L]."""

    def batch_norm(x, prefix):
        return F.batch_norm(
            x,
            sd[f"{prefix}.running_mean"],
            sd[f"{prefix}.running_var"],
            sd[f"{prefix}.weight"],
            sd[f"{prefix}.bias"],
            training=False,
            eps=1e-5,
        )

    h = sum(sd[f"atom_encoder.atom_embedding_list.{k}.weight"][atom_features[:, k]] for k in range(9))
    levels = [h]
    source, target = edge_index
    for i in range(num_layers):
        p = f"gnns.{i}"
        e = sum(sd[f"{p}.bond_encoder.bond_embedding_list.{k}.weight"][bond_features[:, k]] for k in range(3))
        aggregated = torch.zeros_like(h).index_add_(0, target, F.relu(h[source] + e))
        z = F.linear((1 + sd[f"{p}.eps"]) * h + aggregated, sd[f"{p}.mlp.0.weight"], sd[f"{p}.mlp.0.bias"])
        z = F.linear(F.relu(batch_norm(z, f"{p}.mlp.1")), sd[f"{p}.mlp.3.weight"], sd[f"{p}.mlp.3.bias"])
        h = batch_norm(z, f"batch_norms.{i}")
        h = F.relu(h) if i < num_layers - 1 else h
        levels.append(h)
    return levels


def test_converted_encoder_matches_the_original_gin_forward(save, tmp_path, processor, cmet_smiles):
    source = moleculestm_state_dict()
    for i in range(LAYERS):
        source[f"gnns.{i}.eps"] = torch.tensor([0.25 * (i + 1)])  # a trained, non-zero eps must be used
    convert(save(source), tmp_path / "hsanet", SMALL)
    model = AutoModel.from_pretrained(tmp_path / "hsanet").eval()
    batch = processor(cmet_smiles[:6] + ["C/C=C/C(=O)[O-].[Na+]", "[NH4+]"])
    with torch.no_grad():
        levels = model.encoder(batch["atom_features"], batch["edge_index"], batch["bond_features"])
        expected = reference_moleculestm_levels(
            source, batch["atom_features"], batch["edge_index"], batch["bond_features"], LAYERS
        )
    assert len(levels) == LAYERS + 1
    for level, (got, want) in enumerate(zip(levels, expected)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=lambda m: f"level {level}: {m}")


def test_legacy_ogb_chirality_table_gets_a_misc_row(save, tmp_path):
    source = moleculestm_state_dict()
    key = "atom_encoder.atom_embedding_list.1.weight"
    source[key] = source[key][:4].clone()  # ogb < 1.3.6: no "misc" chirality
    summary = convert(save(source), tmp_path / "hsanet", SMALL)
    assert any("no 'misc' chirality" in note for note in summary.notes)
    table = AutoModel.from_pretrained(tmp_path / "hsanet").state_dict()["encoder.atom_embedding.embedding.weight"]
    chirality = table[119:124]  # rows of column 1 follow the 119 atomic-number rows
    assert torch.equal(chirality[:4], source[key]) and torch.equal(chirality[4], source[key][3])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda sd: sd.pop("gnns.1.mlp.3.bias"), "missing keys (1): gnns.1.mlp.3.bias"),
        (lambda sd: sd.update({"gnns.0.mlp.9.weight": torch.zeros(2)}), "unexpected keys (1): gnns.0.mlp.9.weight"),
        (
            lambda sd: sd.update({"gnns.0.mlp.0.weight": torch.zeros(2 * HIDDEN, HIDDEN + 1)}),
            f"gnns.0.mlp.0.weight: expected ({2 * HIDDEN}, {HIDDEN}), got ({2 * HIDDEN}, {HIDDEN + 1}) "
            "(-> encoder.convolutions.0.nn.0.weight)",
        ),
        (
            lambda sd: sd.update({"atom_encoder.atom_embedding_list.0.weight": torch.zeros(120, HIDDEN)}),
            "atom_encoder.atom_embedding_list.0.weight: expected (119, 32), got (120, 32)",
        ),
    ],
)
def test_clear_errors_name_the_offending_key(save, tmp_path, damage, message):
    source = moleculestm_state_dict()
    damage(source)
    with pytest.raises(ConversionError) as error:
        convert(save(source), tmp_path / "hsanet", SMALL)
    assert message in str(error.value)
    assert not (tmp_path / "hsanet").exists()


def test_other_errors(save, tmp_path, capsys):
    source = moleculestm_state_dict()
    checkpoint = save(source)
    with pytest.raises(ConversionError, match="hidden_size=64 but the checkpoint has hidden_size=32"):
        convert(checkpoint, tmp_path / "out", {**SMALL, "hidden_size": 64})
    with pytest.raises(ConversionError, match="does not exist"):
        convert(tmp_path / "nope.pth", tmp_path / "out")
    with pytest.raises(ConversionError, match="cannot tell the checkpoint layout"):
        convert(save({"encoder.weight": torch.zeros(2)}, "other.pth"), tmp_path / "out")
    with pytest.raises(ConversionError, match="keys are those of moleculestm"):
        convert(checkpoint, tmp_path / "out", SMALL, source_format="pretrain-gnns")
    with pytest.raises(ConversionError, match="not key=value"):
        parse_config_overrides("num_query_tokens")
    assert parse_config_overrides('{"fusion": "mlp"}') == {"fusion": "mlp"}
    assert parse_config_overrides("fusion=mlp,num_query_tokens=8,gnn_dropout=0.1") == {
        "fusion": "mlp",
        "num_query_tokens": 8,
        "gnn_dropout": 0.1,
    }
    assert (
        main(
            [
                "--checkpoint",
                str(checkpoint),
                "--output",
                str(tmp_path / "out"),
                "--config-overrides",
                "num_attention_heads=5",
            ]
        )
        == 1
    )
    assert "num_attention_heads" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_conversion_reference_rows_are_ogbs_own(ogb_utils, cmet_smiles):
    """The converter's written-out OGB rules (used where `ogb` is not installed) equal the real `ogb` package's."""
    from rdkit import Chem

    molecules = [Chem.MolFromSmiles(smiles) for smiles in cmet_smiles[:200] + ["C[C@@H](C(=O)[O-])[NH3+]", "C/C=C\\C"]]
    atoms = [atom for mol in molecules for atom in mol.GetAtoms()]
    bonds = [bond for mol in molecules for bond in mol.GetBonds()]
    features = ogb_utils.features
    assert [ogb_reference_atom_row(a) for a in atoms] == [features.atom_to_feature_vector(a) for a in atoms]
    assert [ogb_reference_bond_row(b) for b in bonds] == [features.bond_to_feature_vector(b) for b in bonds]


def test_featurizer_check_detects_a_column_that_differs_from_ogb():
    def reference_scheme(damaged_column=None):
        def atoms(mol):
            rows = np.array([ogb_reference_atom_row(atom) for atom in mol.GetAtoms()])
            if damaged_column is not None:
                rows[:, damaged_column] = 0
            return rows

        def bonds(mol):
            return np.array([ogb_reference_bond_row(bond) for bond in mol.GetBonds()]).reshape(-1, 3)

        return FeatureScheme("reference", atoms, bonds, OGB.atom_vocabulary_sizes, OGB.bond_vocabulary_sizes)

    assert featurizer_differences_from_ogb(reference_scheme()) == []
    differences = featurizer_differences_from_ogb(reference_scheme(damaged_column=2))
    assert len(differences) == 1 and differences[0].startswith("atom column 2 (degree)")


# ---------------------------------------------------------------------------------------------------------------------
# pretrain-gnns (Hu et al.; GraphCL's / MolCA's graphcl_80.pth)
# ---------------------------------------------------------------------------------------------------------------------
class OriginalPretrainGNNsLayer(torch.nn.Module):
    """The parameters of pretrain-gnns' `GINConv` under their original names (chem/model.py)."""

    def __init__(self, hidden):
        super().__init__()
        self.mlp = torch.nn.Sequential(torch.nn.Linear(hidden, 2 * hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(2 * hidden, hidden))
        self.edge_embedding1 = torch.nn.Embedding(6, hidden)  # bond type 4 + self-loop + mask
        self.edge_embedding2 = torch.nn.Embedding(3, hidden)  # bond direction


class OriginalPretrainGNNsGIN(torch.nn.Module):
    """pretrain-gnns' `GNN(num_layer, emb_dim, gnn_type="gin")`: its module names (hence `state_dict()` keys and
    shapes), and its forward in eval mode written from the layer equations:
    h_i <- BN(MLP(sum_{j in N(i) + i} (h_j + e_ji))), a self-loop edge per atom with bond features `self_loop`, no
    ReLU on messages (`message_relu=True` adds one: GINEConv's message, for the check that the test can fail), ReLU
    except after the last layer. Returns [atom embedding, layer 1, ..., layer L]."""

    def __init__(self, hidden, num_layers):
        super().__init__()
        self.x_embedding1 = torch.nn.Embedding(120, hidden)  # atomic number 1..118 + mask
        self.x_embedding2 = torch.nn.Embedding(3, hidden)  # chirality
        self.gnns = torch.nn.ModuleList(OriginalPretrainGNNsLayer(hidden) for _ in range(num_layers))
        self.batch_norms = torch.nn.ModuleList(torch.nn.BatchNorm1d(hidden) for _ in range(num_layers))

    def levels(self, x, edge_index, edge_attr, self_loop=(4, 0), message_relu=False):
        num_atoms = x.shape[0]
        loops = torch.arange(num_atoms)
        edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)
        edge_attr = torch.cat([edge_attr, torch.tensor([self_loop]).expand(num_atoms, 2)])
        source, target = edge_index
        h = self.x_embedding1(x[:, 0]) + self.x_embedding2(x[:, 1])
        levels = [h]
        for i, (layer, norm) in enumerate(zip(self.gnns, self.batch_norms)):
            messages = h[source] + layer.edge_embedding1(edge_attr[:, 0]) + layer.edge_embedding2(edge_attr[:, 1])
            messages = F.relu(messages) if message_relu else messages
            h = norm(layer.mlp(torch.zeros_like(h).index_add_(0, target, messages)))
            h = F.relu(h) if i < len(self.gnns) - 1 else h
            levels.append(h)
        return levels


def original_pretrain_gnns_gin() -> OriginalPretrainGNNsGIN:
    torch.manual_seed(3)
    gin = OriginalPretrainGNNsGIN(HIDDEN, LAYERS)
    with torch.no_grad():
        for norm in gin.batch_norms:  # trained-looking statistics, so a mix-up of BatchNorm tensors shows
            norm.running_mean.normal_()
            norm.running_var.uniform_(0.5, 1.5)
            norm.weight.normal_()
            norm.bias.normal_()
            norm.num_batches_tracked.fill_(7)
    return gin.eval()


@pytest.mark.parametrize(
    "wrapper, overrides, self_loop",
    [
        ("gnn.", {}, (4, 0)),  # pretrain-gnns' GNN_graphpred; self-loop bond type 4 as pretrain-gnns / GraphCL
        ("graph_encoder.", {"gin_self_loop_bond_features": [0, 0]}, (0, 0)),  # inside MolCA, whose GIN uses (0, 0)
    ],
)
def test_pretrain_gnns_conversion_equals_the_layer_equations(save, tmp_path, cmet_smiles, wrapper, overrides,
                                                             self_loop):
    from transformers import AutoProcessor

    original = original_pretrain_gnns_gin()
    checkpoint = {f"{wrapper}{key}": value for key, value in original.state_dict().items()}
    if wrapper == "gnn.":
        checkpoint.update({"graph_pred_linear.weight": torch.randn(1, HIDDEN),
                           "graph_pred_linear.bias": torch.randn(1)})
    summary = convert(save(checkpoint), tmp_path / "hsanet", {**SMALL, **overrides})
    assert summary.source_format == PRETRAIN_GNNS and summary.warnings == []
    assert f"self-loop edges get bond features {list(self_loop)}" in str(summary)

    model = AutoModel.from_pretrained(tmp_path / "hsanet").eval()
    processor = AutoProcessor.from_pretrained(tmp_path / "hsanet")
    assert (model.config.gin_variant, model.config.feature_scheme) == ("pretrain_gnns", "pretrain_gnns")
    assert processor.feature_extractor.feature_scheme == "pretrain_gnns"
    # real molecules, plus double-bond directions, charges and a dummy atom (the mask row 119)
    batch = processor(cmet_smiles[:6] + ["C/C=C/C(=O)[O-].[Na+]", "F/C=C\\F", "[NH4+]", "*C(=O)O"])
    assert (batch["atom_features"][:, 0] == 119).sum() == 1 and (batch["bond_features"][:, 1] > 0).any()
    inputs = (batch["atom_features"], batch["edge_index"], batch["bond_features"])
    with torch.no_grad():
        levels = model.encoder(*inputs)
        expected = original.levels(*inputs, self_loop=self_loop)
        with_relu = original.levels(*inputs, self_loop=self_loop, message_relu=True)
        outputs = model(**batch)
    assert len(levels) == LAYERS + 1
    for level, (got, want) in enumerate(zip(levels, expected)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5, msg=lambda m: f"level {level}: {m}")
    # the comparison can fail: GINEConv's ReLU on messages, or the other self-loop row, changes the result
    assert (with_relu[1] - expected[1]).abs().max() > 1e-2
    other_loop = original.levels(*inputs, self_loop=(0, 0) if self_loop == (4, 0) else (4, 0))
    assert (other_loop[1] - expected[1]).abs().max() > 1e-2
    assert torch.isfinite(outputs.last_hidden_state).all()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda sd: sd.pop("gnns.1.edge_embedding2.weight"), "missing keys (1): gnns.1.edge_embedding2.weight"),
        (lambda sd: [sd.pop(key) for key in list(sd) if key.startswith("gnns.1.mlp.")],  # a layer cut short
         "missing keys (4): gnns.1.mlp.0.weight, gnns.1.mlp.0.bias, gnns.1.mlp.2.weight, gnns.1.mlp.2.bias"),
        (lambda sd: sd.update({"x_embedding1.weight": torch.zeros(119, HIDDEN)}),
         f"x_embedding1.weight: expected (120, {HIDDEN}), got (119, {HIDDEN}) "
         "(-> encoder.atom_embedding.embedding.weight)"),
        (lambda sd: sd.update({"gnns.0.edge_embedding1.weight": torch.zeros(5, HIDDEN)}),
         f"gnns.0.edge_embedding1.weight: expected (6, {HIDDEN}), got (5, {HIDDEN})"),
        (lambda sd: sd.update({"gnns.0.mlp.4.weight": torch.zeros(2)}), "unexpected keys (1): gnns.0.mlp.4.weight"),
    ],
)
def test_pretrain_gnns_wrong_checkpoint_names_the_keys(save, tmp_path, damage, message):
    source = dict(original_pretrain_gnns_gin().state_dict())
    damage(source)
    with pytest.raises(ConversionError) as error:
        convert(save(source), tmp_path / "hsanet", SMALL)
    assert message in str(error.value) and "pretrain-gnns GIN" in str(error.value)
    assert not (tmp_path / "hsanet").exists()


def test_pretrain_gnns_truncated_file_and_wrong_overrides(save, tmp_path):
    checkpoint = save(dict(original_pretrain_gnns_gin().state_dict()))
    data = checkpoint.read_bytes()
    for size in (len(data) // 2, 64):  # cut off in the middle of the tensors, and in the zip header
        truncated = save({}, f"truncated_{size}.pth")
        truncated.write_bytes(data[:size])
        message = rf"truncated_{size}\.pth.*could not be read by torch\.load.*truncated"
        with pytest.raises(ConversionError, match=message):
            convert(truncated, tmp_path / "hsanet", SMALL)
    with pytest.raises(ConversionError, match="gin_variant='gine' but the checkpoint has gin_variant=pretrain_gnns"):
        convert(checkpoint, tmp_path / "hsanet", {**SMALL, "gin_variant": "gine"})
    with pytest.raises(ConversionError, match="embeds 2 atom / 2 bond feature columns, feature_scheme 'ogb' has 9"):
        convert(checkpoint, tmp_path / "hsanet", {**SMALL, "feature_scheme": "ogb",
                                                  "gin_self_loop_bond_features": [0, 0, 0]})
    with pytest.raises(ValueError, match="gin_self_loop_bond_features"):
        convert(checkpoint, tmp_path / "hsanet", {**SMALL, "gin_self_loop_bond_features": [6, 0]})
    assert not (tmp_path / "hsanet").exists()


def test_pretrain_gnns_featurizer_follows_the_original_rules(cmet_smiles):
    """The 2+2 scheme against pretrain-gnns' own rules (`mol_to_graph_data_obj_simple`, written out in the converter)
    on real molecules; a damaged column is reported by name."""
    probes = tuple(cmet_smiles[:60]) + ("C/C=C/C(=O)[O-].[Na+]", "F/C=C\\F", "C[C@@H](N)C(=O)O", "[2H]OC#N")
    assert featurizer_differences(HU, PRETRAIN_GNNS, probes) == []

    def damaged_bonds(mol):
        rows = HU.bond_features(mol)
        rows[:, 1] = 0  # drops the bond directions
        return rows

    damaged = FeatureScheme("damaged", HU.atom_features, damaged_bonds, HU.atom_vocabulary_sizes,
                            HU.bond_vocabulary_sizes, HU.self_loop_bond_features)
    differences = featurizer_differences(damaged, PRETRAIN_GNNS, probes)
    assert len(differences) == 1 and differences[0].startswith("bond column 1 (bond direction) differs from "
                                                               "pretrain-gnns'")
