"""Reference numbers for tests/it/reference.rs: a three-epoch Keras run.

Embedding(20, 4) -> Flatten -> Dense(1, sigmoid), fixed initial weights,
fixed data (64 samples of 5 ids from an LCG), batch 16, no shuffling,
RMSprop with Keras's defaults, binary cross-entropy.

Run with Keras 3 on the TensorFlow backend (numbers pinned in the test were
made with keras 3.15.1, tensorflow 2.21.0 on CPU):

    python3 -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install tensorflow-cpu
    /tmp/kvenv/bin/python crates/embkit/tests/reference/keras_rmsprop.py
"""
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np  # noqa: E402

N, SEQ, VOCAB, DIM = 64, 5, 20, 4


def lcg_data():
    x = 12345
    ids = np.zeros((N, SEQ), dtype="int32")
    for n in range(N):
        for s in range(SEQ):
            x = (1103515245 * x + 12345) % 2**31
            ids[n, s] = (x >> 16) % VOCAB
    # Label: at least three of the five ids are below 10.
    y = ((ids < 10).sum(axis=1) >= 3).astype("float32").reshape(N, 1)
    return ids, y


def initial_weights():
    emb = np.array(
        [[((i * 7 + j * 3) % 11 - 5) / 50.0 for j in range(DIM)] for i in range(VOCAB)],
        dtype="float32",
    )
    kernel = np.array([((k * 5) % 13 - 6) / 40.0 for k in range(SEQ * DIM)], dtype="float32")
    return emb, kernel.reshape(SEQ * DIM, 1), np.zeros(1, dtype="float32")


def main():
    import keras

    ids, y = lcg_data()
    emb, kernel, bias = initial_weights()
    model = keras.Sequential(
        [
            keras.Input((SEQ,), dtype="int32"),
            keras.layers.Embedding(VOCAB, DIM),
            keras.layers.Flatten(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.layers[0].set_weights([emb])
    model.layers[2].set_weights([kernel, bias])
    model.compile(optimizer=keras.optimizers.RMSprop(), loss="binary_crossentropy")
    h = model.fit(ids, y, batch_size=16, epochs=3, shuffle=False, verbose=0)
    print("ids[0]", ids[0].tolist(), "labels", int(y.sum()))
    print("losses", [f"{v:.9g}" for v in h.history["loss"]])
    print("embedding[0]", [f"{v:.9g}" for v in model.layers[0].get_weights()[0][0]])
    print("embedding[19]", [f"{v:.9g}" for v in model.layers[0].get_weights()[0][19]])
    print("bias", [f"{v:.9g}" for v in model.layers[2].get_weights()[1]])


if __name__ == "__main__":
    main()
