"""Reference numbers for tests/it/keras_preprocessing.rs: StringLookup,
IntegerLookup and TextVectorization.

Prints each layer's vocabulary (`get_vocabulary()`), its outputs on fixed
inputs and, for tf_idf, its idf weights.

Run with Keras 3 on the TensorFlow backend (numbers pinned in the tests were
made with keras 3.15.1, tensorflow 2.21.0 on CPU):

    /tmp/kvenv/bin/python crates/embkit/tests/reference/keras_text_and_lookup.py
"""
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

np.set_printoptions(linewidth=200, precision=9)

SEED = "cat dog snake dog mouse cat dog snake dog".split(" ")
UNSEEN = ["zebra", "tiger", "owl", "émeu", "horse", "bear", "", "dog", "x" * 100]


def show(name, value):
    if isinstance(value, (tf.Tensor, np.ndarray)):
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = [[float(f"{x:.9g}") for x in row] for row in value.tolist()] if value.ndim == 2 else [float(f"{x:.9g}") for x in value.tolist()]
        elif value.dtype.kind == "O":
            value = [x.decode() if isinstance(x, bytes) else x for x in value.tolist()]
        else:
            value = value.tolist()
    print(f"{name} = {value}")


print("keras", keras.__version__, "tensorflow", tf.__version__)

# StringLookup
layer = keras.layers.StringLookup(num_oov_indices=4, mask_token="")
layer.adapt(SEED)
show("string_oov4_vocab", layer.get_vocabulary())
show("string_oov4_ids", layer(UNSEEN))
layer = keras.layers.StringLookup(num_oov_indices=3, salt=[133, 137])
layer.adapt(SEED)
show("string_salt_ids", layer(UNSEEN))
layer = keras.layers.StringLookup(max_tokens=3)
layer.adapt(SEED)
show("string_max3_vocab", layer.get_vocabulary())
layer = keras.layers.StringLookup(
    vocabulary=["dog", "snake", "cat"], mask_token="", num_oov_indices=2, invert=True
)
show("string_invert", layer([0, 1, 2, 3, 4, 5, 6, 99]))

# IntegerLookup
INTS = [5, 9, 5, 12, 9, 5, 0]
INT_QUERIES = [5, 9, 12, 0, 7, -1, -42, 100, 2**40]
layer = keras.layers.IntegerLookup(num_oov_indices=3, mask_token=0)
layer.adapt(INTS)
show("int_vocab", layer.get_vocabulary())
show("int_floormod_ids", layer(INT_QUERIES))
layer = keras.layers.IntegerLookup(num_oov_indices=3, mask_token=0, oov_method="farmhash")
layer.adapt(INTS)
show("int_farmhash_ids", layer(INT_QUERIES))
layer = keras.layers.IntegerLookup(
    num_oov_indices=3, mask_token=0, oov_method="farmhash", salt=[133, 137]
)
layer.adapt(INTS)
show("int_salt_ids", layer(INT_QUERIES))
layer = keras.layers.IntegerLookup(vocabulary=[12, 5, 9], mask_token=0, invert=True)
show("int_invert", layer([0, 1, 2, 3, 4, 99]))

# TextVectorization
TEXTS = [
    "The cat sat on the mat.",
    "The dog ate the cat's food!",
    "ÀÉÎ Ünïcödé café “quoted” — ok",
    "Hello,world  x\u00a0y\ttab\u3000ideo",
    "A dog? A DOG! the end",
]
QUERIES = TEXTS + ["", "the unicorn and the dog", "Ünïcödé ÀÉÎ àéî"]
print("texts =", TEXTS)
print("queries =", QUERIES)

layer = keras.layers.TextVectorization()
layer.adapt(TEXTS)
show("tv_int_vocab", layer.get_vocabulary())
show("tv_int", layer(QUERIES))

layer = keras.layers.TextVectorization(ngrams=2, output_sequence_length=6, max_tokens=12)
layer.adapt(TEXTS)
show("tv_ngrams_vocab", layer.get_vocabulary())
show("tv_ngrams", layer(QUERIES))

layer = keras.layers.TextVectorization(output_sequence_length=12)
layer.adapt(TEXTS)
show("tv_pad12", layer(QUERIES))

layer = keras.layers.TextVectorization(standardize="lower", split="character", max_tokens=20)
layer.adapt(TEXTS)
show("tv_char_vocab", layer.get_vocabulary())
show("tv_char", layer(QUERIES[:3]))

layer = keras.layers.TextVectorization(standardize=None, split=None)
layer.adapt(["a b", "a b", "C", ""])
show("tv_nosplit_vocab", layer.get_vocabulary())
show("tv_nosplit", layer(["a b", "C", "c", ""]))

layer = keras.layers.TextVectorization(standardize="strip_punctuation")
layer.adapt(TEXTS)
show("tv_strip_vocab", layer.get_vocabulary())

for mode in ["multi_hot", "count", "tf_idf"]:
    layer = keras.layers.TextVectorization(output_mode=mode, max_tokens=10, ngrams=2)
    layer.adapt(TEXTS)
    show(f"tv_{mode}_vocab", layer.get_vocabulary())
    show(f"tv_{mode}", layer(QUERIES))
    if mode == "tf_idf":
        show("tv_tf_idf_weights", layer._lookup_layer.idf_weights_const)

layer = keras.layers.TextVectorization(output_mode="count", max_tokens=10, pad_to_max_tokens=True)
layer.adapt(["a b b", "c"])
show("tv_count_padded_vocab", layer.get_vocabulary())
show("tv_count_padded", layer(["b a x x", ""]))

layer = keras.layers.TextVectorization(
    output_mode="tf_idf", vocabulary=["b", "a"], idf_weights=[0.5, 2.0]
)
show("tv_tf_idf_given_vocab", layer.get_vocabulary())
show("tv_tf_idf_given_weights", layer._lookup_layer.idf_weights_const)
show("tv_tf_idf_given", layer(["a b b x", "x y"]))
