"""Reference numbers for tests/it/reference.rs: the same three-epoch run as
keras_rmsprop.py, in PyTorch, with torch.optim.RMSprop.

nn.Embedding(20, 4) (dense gradients: RMSprop takes no sparse ones) ->
flatten -> nn.Linear(20, 1) -> sigmoid, BCELoss, batch 16, no shuffling,
RMSprop(lr=0.001) with PyTorch's other defaults (alpha 0.99, eps 1e-8 added
outside the square root). Numbers pinned in the test were made with torch
2.15.0 on CPU:

    python3 -m venv /tmp/tvenv && /tmp/tvenv/bin/pip install torch numpy
    /tmp/tvenv/bin/python crates/embkit/tests/reference/torch_rmsprop.py
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import numpy as np  # noqa: E402
import torch  # noqa: E402

from keras_rmsprop import DIM, SEQ, VOCAB, initial_weights, lcg_data  # noqa: E402


def main():
    torch.set_num_threads(1)
    ids, y = lcg_data()
    emb, kernel, bias = initial_weights()
    table = torch.nn.Embedding(VOCAB, DIM)
    dense = torch.nn.Linear(SEQ * DIM, 1)
    with torch.no_grad():
        table.weight.copy_(torch.from_numpy(emb))
        dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
        dense.bias.copy_(torch.from_numpy(bias))
    params = list(table.parameters()) + list(dense.parameters())
    opt = torch.optim.RMSprop(params, lr=0.001)
    loss_fn = torch.nn.BCELoss()
    x_all, y_all = torch.from_numpy(ids.astype(np.int64)), torch.from_numpy(y)
    losses = []
    for _ in range(3):
        total = 0.0
        for s in range(0, len(ids), 16):
            x, t = x_all[s : s + 16], y_all[s : s + 16]
            p = torch.sigmoid(dense(table(x).reshape(len(x), -1)))
            loss = loss_fn(p, t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / 4)
    print("losses", [f"{v:.9g}" for v in losses])
    print("embedding[0]", [f"{v:.9g}" for v in table.weight[0].tolist()])
    print("bias", [f"{v:.9g}" for v in dense.bias.tolist()])


if __name__ == "__main__":
    main()
