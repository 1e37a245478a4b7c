"""The same run as keras_rmsprop.py in numpy, with Keras's table semantics
(`keras`: per-occurrence squares, every row's state decays), the lazy
sparse ones (`lazy`: only the batch's rows, duplicates summed first), and
PyTorch's RMSprop on a dense gradient (`torch`: alpha 0.99, eps 1e-8
outside the square root, every row's state decays).
Run: python3 crates/embkit/tests/reference/numpy_rmsprop.py (numpy only)."""
import sys; sys.path.insert(0, __import__("os").path.dirname(__file__))
import numpy as np
from keras_rmsprop import lcg_data, initial_weights
ids, y = lcg_data(); emb, K, b = initial_weights()
emb = emb.astype(np.float32); K = K.astype(np.float32); b = b.astype(np.float32)
def run(mode):
    E, W, B = emb.copy(), K.copy(), b.copy()
    vE, vW, vB = np.zeros_like(E), np.zeros_like(W), np.zeros_like(B)
    lr, rho, eps = np.float32(0.001), np.float32(0.9), np.float32(1e-7)
    if mode == "torch":
        rho, eps = np.float32(0.99), np.float32(1e-8)
    # Keras: w -= lr*g/sqrt(v + eps); PyTorch: w -= lr*g/(sqrt(v) + eps).
    upd = (lambda g, v: lr*g/(np.sqrt(v)+eps)) if mode == "torch" else (lambda g, v: lr*g/np.sqrt(v+eps))
    losses = []
    for ep in range(3):
        tot = 0
        for s in range(0, 64, 16):
            x = ids[s:s+16]; t = y[s:s+16]
            h = E[x].reshape(16, -1)
            z = h @ W + B
            l = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            tot += l.mean()
            gz = (1/(1+np.exp(-z)) - t) / 16
            gW = h.T @ gz; gB = gz.sum(0); gh = (gz @ W.T).reshape(16, 5, 4)
            gE = np.zeros_like(E); sqE = np.zeros_like(E)
            np.add.at(gE, x, gh); np.add.at(sqE, x, gh**2)
            if mode == "keras":  # every row, squares of the occurrences
                vE = rho*vE + (1-rho)*sqE
                E = E - upd(gE, vE)
            elif mode == "torch":  # every row (a dense gradient), square of the sum
                vE = rho*vE + (1-rho)*gE**2
                E = E - upd(gE, vE)
            else:  # lazy: the batch's rows only, square of the sum
                touched = np.unique(x)
                vE[touched] = rho*vE[touched] + (1-rho)*gE[touched]**2
                E[touched] = E[touched] - upd(gE[touched], vE[touched])
            vW = rho*vW + (1-rho)*gW**2; W = W - upd(gW, vW)
            vB = rho*vB + (1-rho)*gB**2; B = B - upd(gB, vB)
        losses.append(tot/4)
    return losses, E
for mode in ["keras", "lazy", "torch"]:
    l, E = run(mode); print(mode, ["%.9g" % v for v in l], E[0])
