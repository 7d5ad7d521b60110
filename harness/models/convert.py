"""all-MiniLM-L6-v2 (a BERT encoder) as a DistilBERT sequence classifier.

The compressors and suites work on ``DistilBertForSequenceClassification``.
MiniLM-L6-H384 is a plain BERT encoder (post-LayerNorm, exact-erf GELU), and
DistilBERT's blocks compute exactly the same function, so the weights map 1:1:

=================================================  =======================================
BERT (``BertModel``)                               DistilBERT (``DistilBertModel``)
=================================================  =======================================
embeddings.word_embeddings                         embeddings.word_embeddings
embeddings.position_embeddings                     embeddings.position_embeddings
  + embeddings.token_type_embeddings[0]              (DistilBERT has no token types)
embeddings.LayerNorm                               embeddings.LayerNorm
encoder.layer.i.attention.self.{query,key,value}   transformer.layer.i.attention.{q,k,v}_lin
encoder.layer.i.attention.output.dense             transformer.layer.i.attention.out_lin
encoder.layer.i.attention.output.LayerNorm         transformer.layer.i.sa_layer_norm
encoder.layer.i.intermediate.dense                 transformer.layer.i.ffn.lin1
encoder.layer.i.output.dense                       transformer.layer.i.ffn.lin2
encoder.layer.i.output.LayerNorm                   transformer.layer.i.output_layer_norm
pooler.dense                                       (dropped; the classifier uses [CLS])
=================================================  =======================================

Folding token type 0 into the position embeddings is exact for single-segment
inputs (token_type_ids all 0), which is all this project feeds the model.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

import torch

from harness.core.errors import HarnessError
from harness.data import assets

# BERT keys with no DistilBERT counterpart.
_IGNORED_PREFIXES = ("pooler.", "cls.")
_IGNORED_KEYS = frozenset({"embeddings.position_ids", "embeddings.token_type_ids"})

_LAYER_MAP = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def distilbert_config_from_bert(bert_config: Mapping[str, Any] | Any, num_labels: int = 2):
    """A ``DistilBertConfig`` with the sizes of a BERT config.

    ``bert_config`` is a config.json dict (or a ``BertConfig``).  Maps
    hidden_size -> dim, num_hidden_layers -> n_layers, num_attention_heads ->
    n_heads, intermediate_size -> hidden_dim, hidden_dropout_prob -> dropout,
    attention_probs_dropout_prob -> attention_dropout.  DistilBERT fixes
    LayerNorm eps at 1e-12 (BERT's default); a different eps is ignored.

    Raises HarnessError for a config DistilBERT cannot represent: hidden_act
    other than "gelu", relative position embeddings, a decoder, or
    hidden_size not divisible by the head count.
    """
    from transformers import DistilBertConfig

    cfg = bert_config.to_dict() if hasattr(bert_config, "to_dict") else dict(bert_config)
    problems = []
    if cfg.get("model_type", "bert") != "bert":
        problems.append(f"model_type {cfg.get('model_type')!r} is not 'bert'")
    if cfg.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act {cfg.get('hidden_act')!r} is not 'gelu'")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {cfg.get('position_embedding_type')!r}")
    if cfg.get("is_decoder", False) or cfg.get("add_cross_attention", False):
        problems.append("it is a decoder")
    try:
        dim, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        sizes = dict(vocab_size=int(cfg["vocab_size"]), dim=dim, n_layers=int(cfg["num_hidden_layers"]),
                     n_heads=heads, hidden_dim=int(cfg["intermediate_size"]),
                     max_position_embeddings=int(cfg.get("max_position_embeddings", 512)))
    except (KeyError, TypeError, ValueError) as e:
        raise HarnessError(f"BERT config lacks a usable size field ({e}): check config.json") from None
    if dim % heads:
        problems.append(f"hidden_size {dim} is not divisible by {heads} heads")
    if problems:
        raise HarnessError(
            f"cannot convert this BERT config to DistilBERT: {'; '.join(problems)}; "
            f"use a standard BERT encoder checkpoint"
        )
    config = DistilBertConfig(
        **sizes,
        activation="gelu",
        dropout=float(cfg.get("hidden_dropout_prob", 0.1)),
        attention_dropout=float(cfg.get("attention_probs_dropout_prob", 0.1)),
        initializer_range=float(cfg.get("initializer_range", 0.02)),
        pad_token_id=int(cfg.get("pad_token_id", 0) or 0),
        sinusoidal_pos_embds=False,
        num_labels=num_labels,
    )
    if num_labels == 2:
        config.id2label = {0: "negative", 1: "positive"}
        config.label2id = {"negative": 0, "positive": 1}
    return config


def bert_to_distilbert_state_dict(bert_sd: Mapping[str, torch.Tensor], n_layers: int,
                                  prefix: str = "distilbert.") -> dict[str, torch.Tensor]:
    """Rename (and fold) a BERT encoder state dict into DistilBERT's.

    Accepts keys with or without a ``bert.`` prefix; ignores the pooler, MLM
    head (``cls.``) and position_ids buffer.  Output keys start with ``prefix``
    (``"distilbert."`` for ``DistilBertForSequenceClassification``, ``""`` for
    ``DistilBertModel``); tensors are new copies.  Shapes are unchanged except
    that position_embeddings (P, H) becomes position_embeddings +
    token_type_embeddings[0].

    Raises HarnessError naming missing keys, or keys it does not recognise
    (e.g. layers beyond ``n_layers``).
    """
    sd = {(k[len("bert."):] if k.startswith("bert.") else k): v for k, v in bert_sd.items()}
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(src: str, dst: str) -> None:
        if src in sd:
            out[prefix + dst] = sd[src].detach().clone()
            used.add(src)

    take("embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight")
    take("embeddings.LayerNorm.weight", "embeddings.LayerNorm.weight")
    take("embeddings.LayerNorm.bias", "embeddings.LayerNorm.bias")
    pos, tt = "embeddings.position_embeddings.weight", "embeddings.token_type_embeddings.weight"
    if pos in sd and tt in sd:
        out[prefix + pos] = (sd[pos] + sd[tt][0]).detach().clone()
        used |= {pos, tt}
    for i in range(n_layers):
        for src, dst in _LAYER_MAP.items():
            for p in ("weight", "bias"):
                take(f"encoder.layer.{i}.{src}.{p}", f"transformer.layer.{i}.{dst}.{p}")

    missing = _required_keys(n_layers) - used
    if missing:
        shown = ", ".join(sorted(missing)[:5]) + (" …" if len(missing) > 5 else "")
        raise HarnessError(
            f"BERT weights are missing {len(missing)} key(s) ({shown}): the checkpoint is not a "
            f"{n_layers}-layer BERT encoder; check the model file"
        )
    extra = sorted(k for k in sd if k not in used and k not in _IGNORED_KEYS
                   and not k.startswith(_IGNORED_PREFIXES))
    if extra:
        shown = ", ".join(extra[:5]) + (" …" if len(extra) > 5 else "")
        raise HarnessError(
            f"BERT weights have {len(extra)} unexpected key(s) ({shown}): the checkpoint does not "
            f"match a {n_layers}-layer BERT encoder; check config.json against the weights"
        )
    return out


def _required_keys(n_layers: int) -> set[str]:
    keys = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
            "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
            "embeddings.LayerNorm.bias"}
    for i in range(n_layers):
        keys |= {f"encoder.layer.{i}.{src}.{p}" for src in _LAYER_MAP for p in ("weight", "bias")}
    return keys


def load_minilm_as_distilbert(num_labels: int = 2, seed: int = 42, model_class: str = "DistilBertForSequenceClassification"):
    """all-MiniLM-L6-v2 as a ``DistilBertForSequenceClassification`` (6 layers, dim 384,
    12 heads, FFN 1536, vocab 30,522; 22.7 M parameters), in eval mode.

    The encoder comes from the ``minilm-l6`` asset (no download: raises
    HarnessError with the setup command if it is missing or corrupt); the head
    (pre_classifier, classifier) is randomly initialised under
    ``torch.manual_seed(seed)``, so the same seed gives the same model.
    ``model_class="DistilBertForMaskedLM"`` gives the encoder with DistilBERT's
    MLM head instead (vocab_transform, vocab_layer_norm, a projector tied to the
    word embeddings; the :mod:`harness.models.mlm` profile).  Raises HarnessError if the
    converted weights leave anything but the head unloaded.
    """
    from safetensors.torch import load_file

    folder = assets.asset_dir("minilm-l6")
    bert_config = json.loads((folder / "config.json").read_text())
    config = distilbert_config_from_bert(bert_config, num_labels=num_labels)
    state = bert_to_distilbert_state_dict(load_file(folder / "model.safetensors"), config.n_layers)
    return _with_encoder(model_class, config, state, seed)


def _with_encoder(model_class: str, config: Any, state: dict[str, torch.Tensor], seed: int):
    """``model_class(config)`` (seeded init) with the converted encoder loaded;
    everything outside ``distilbert.`` (the task head) stays freshly initialised."""
    import transformers

    torch.manual_seed(seed)
    model = getattr(transformers, model_class)(config)
    result = model.load_state_dict(state, strict=False)
    # A tied projector reports its weight missing although it is the (loaded) word embeddings.
    tied = {k for k in result.missing_keys if k == "vocab_projector.weight"
            and model.vocab_projector.weight is model.distilbert.embeddings.word_embeddings.weight}
    encoder_missing = [k for k in set(result.missing_keys) - tied if k.startswith("distilbert.")]
    if encoder_missing or result.unexpected_keys:
        raise HarnessError(
            f"converted MiniLM weights do not fit {model_class} (missing {sorted(encoder_missing)}, "
            f"unexpected {sorted(result.unexpected_keys)}): this transformers version renamed "
            f"DistilBERT modules; update harness/models/convert.py"
        )
    return model.eval()


# ---------------------------------------------------------------------------
# paraphrase-MiniLM-L3-v2 from its ONNX export (the EdgeMIN student)

_ONNX_PREFIX = "model.0.auto_model."
# The ONNX file does not record the head count; paraphrase-MiniLM-L3-v2 has 12
# (its sentence-transformers config).  The ORT parity test fails if this is wrong.
MINILM_L3_HEADS = 12


def onnx_bert_state_dict(onnx_path) -> dict[str, torch.Tensor]:
    """BERT-named float32 tensors from a sentence-transformers BERT ONNX export.

    Named initializers (``model.0.auto_model.<bert key>``: embeddings, biases,
    LayerNorms) keep their names without the prefix.  The exporter left the
    Linear weights anonymous (``onnx::MatMul_470``); each is recovered from the
    graph: a ``MatMul(x, W)`` whose output feeds an ``Add`` with a named bias
    ``<module>.bias`` is ``<module>.weight = W.T`` (ONNX stores (in, out),
    ``nn.Linear`` (out, in)).

    Raises HarnessError if the file cannot be read or a MatMul weight has no
    named bias to take its name from.
    """
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(onnx_path))
    except Exception as e:  # noqa: BLE001 -- protobuf errors are long; one line is enough
        raise HarnessError(f"cannot read ONNX file {onnx_path} ({str(e).splitlines()[0][:120]}): "
                           f"run 'python -m harness setup --force'") from None
    inits = {i.name: i for i in model.graph.initializer}
    out: dict[str, torch.Tensor] = {}
    for name, init in inits.items():
        if name.startswith(_ONNX_PREFIX):
            out[name[len(_ONNX_PREFIX):]] = torch.from_numpy(numpy_helper.to_array(init).copy()).float()
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for x in node.input:
            consumers.setdefault(x, []).append(node)
    for node in model.graph.node:
        if node.op_type != "MatMul":
            continue
        weights = [x for x in node.input if x in inits and not x.startswith(_ONNX_PREFIX)]
        if not weights:
            continue  # activation x activation (attention scores)
        biases = [x for add in consumers.get(node.output[0], []) if add.op_type == "Add"
                  for x in add.input if x.startswith(_ONNX_PREFIX) and x.endswith(".bias")]
        if len(biases) != 1:
            raise HarnessError(
                f"ONNX MatMul weight {weights[0]} in {onnx_path} is not followed by one named bias "
                f"(found {biases}): not a sentence-transformers BERT export; check the model file")
        key = biases[0][len(_ONNX_PREFIX):-len(".bias")] + ".weight"
        out[key] = torch.from_numpy(numpy_helper.to_array(inits[weights[0]]).copy()).float().T.contiguous()
    return out


def bert_config_from_state_dict(sd: Mapping[str, torch.Tensor], n_heads: int) -> dict[str, Any]:
    """A BERT config.json dict with the sizes read off the weights' shapes
    (vocabulary, hidden, FFN, layers, positions); ``n_heads`` is not in the weights."""
    layers = {int(k.split(".")[2]) for k in sd if k.startswith("encoder.layer.")}
    vocab, hidden = sd["embeddings.word_embeddings.weight"].shape
    return {"model_type": "bert", "vocab_size": int(vocab), "hidden_size": int(hidden),
            "num_hidden_layers": len(layers), "num_attention_heads": n_heads,
            "intermediate_size": int(sd["encoder.layer.0.intermediate.dense.weight"].shape[0]),
            "max_position_embeddings": int(sd["embeddings.position_embeddings.weight"].shape[0]),
            "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}


def minilm_l3_onnx_path():
    """The verified ``paraphrase-MiniLM-L3-v2.onnx`` (HarnessError naming the setup command if absent)."""
    return assets.asset_dir("minilm-l3") / assets.MINILM_L3_ONNX


def load_minilm_l3_as_distilbert(num_labels: int = 2, seed: int = 42):
    """paraphrase-MiniLM-L3-v2 as a ``DistilBertForSequenceClassification`` (3 layers,
    dim 384, 12 heads, FFN 1536, vocab 30,522; 17.4 M parameters with the head), eval mode.

    The encoder comes from the ``minilm-l3`` asset's ONNX initializers
    (:func:`onnx_bert_state_dict`, then the same renaming and token-type folding
    as the L6 baseline); the head is randomly initialised under
    ``torch.manual_seed(seed)``.  It uses minilm-l6's tokenizer (same
    vocabulary; the package ships none).  Raises HarnessError if the asset is
    missing ("run 'python -m harness setup'") or the weights do not fit.
    """
    bert_sd = onnx_bert_state_dict(minilm_l3_onnx_path())
    config = distilbert_config_from_bert(bert_config_from_state_dict(bert_sd, MINILM_L3_HEADS), num_labels)
    return _with_encoder("DistilBertForSequenceClassification", config,
                         bert_to_distilbert_state_dict(bert_sd, config.n_layers), seed)
