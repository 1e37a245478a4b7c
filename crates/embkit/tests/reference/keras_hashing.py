"""Reference numbers for tests/it/keras_preprocessing.rs: hashing.

Prints, for a set of strings (empty, ASCII, non-ASCII, every farmhash length
class: 0-3, 4-7, 8-16, 17-32, 33-64 and the > 64 byte loop):

- TF's `to_hash_bucket_fast(s, n)` = FarmHash Fingerprint64(utf8(s)) % n;
- TF's `to_hash_bucket_strong(s, n, key=[k0, k1])` = SipHash-2-4(k0, k1) % n;
- `keras.layers.Hashing` bins (no salt, salt, mask_value, integer inputs).

Fingerprint64 is printed modulo 2**63 - 1 and modulo 2**32 + 15, which
together pin the 64-bit value (the Rust test checks both).

Run with Keras 3 on the TensorFlow backend (numbers pinned in the tests were
made with keras 3.15.1, tensorflow 2.21.0 on CPU):

    /tmp/kvenv/bin/python crates/embkit/tests/reference/keras_hashing.py
"""
import os

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

STRINGS = [
    "",
    "a",
    "ab",
    "abc",
    "cat",
    "dog",
    "émeu",
    "zebra",
    "hello, world",
    "0123456789abcdef",
    "0123456789abcdefg",
    "The quick brown fox jumps",
    "日本語のテキスト",
    "0123456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcdef!",
    "The quick brown fox jumps over the lazy dog, again and again!",
    "0123456789abcdef" * 4,
    "0123456789abcdef" * 4 + "x",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Ünïcödé " * 20,
    "x" * 1000,
]

M1 = 2**63 - 1
M2 = 2**32 + 15
KEY = [133, 137]


def show(name, values):
    print(f"{name} = {list(int(v) for v in values)}")


print("keras", keras.__version__, "tensorflow", tf.__version__)
print("lengths =", [len(s.encode()) for s in STRINGS])
show("fast_m1", tf.strings.to_hash_bucket_fast(STRINGS, M1).numpy())
show("fast_m2", tf.strings.to_hash_bucket_fast(STRINGS, M2).numpy())
show("strong_m1", tf.strings.to_hash_bucket_strong(STRINGS, M1, key=KEY).numpy())
show("strong_m2", tf.strings.to_hash_bucket_strong(STRINGS, M2, key=KEY).numpy())
show(
    "strong_big_key_m1",
    tf.strings.to_hash_bucket_strong(STRINGS, M1, key=[-5, 2**62 + 3]).numpy(),
)

show("hashing_3", keras.layers.Hashing(num_bins=3)(STRINGS))
show("hashing_1000", keras.layers.Hashing(num_bins=1000)(STRINGS))
show("hashing_mask_3", keras.layers.Hashing(num_bins=3, mask_value="")(STRINGS))
show("hashing_salt_1000", keras.layers.Hashing(num_bins=1000, salt=KEY)(STRINGS))
show("hashing_salt1_1000", keras.layers.Hashing(num_bins=1000, salt=133)(STRINGS))
show("hashing_mask1_1", keras.layers.Hashing(num_bins=1, mask_value="")(STRINGS))

INTS = [0, 1, 7, -1, -42, 123456789, 2**40, -(2**63), 2**63 - 1]
print("ints =", INTS)
show("hashing_int_1000", keras.layers.Hashing(num_bins=1000)(tf.constant(INTS, "int64")))
show(
    "hashing_int_mask_1000",
    keras.layers.Hashing(num_bins=1000, mask_value=7)(tf.constant(INTS, "int64")),
)
show(
    "hashing_int_salt_1000",
    keras.layers.Hashing(num_bins=1000, salt=KEY)(tf.constant(INTS, "int64")),
)
