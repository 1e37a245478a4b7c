"""Regenerates the NumPy and safetensors fixtures of this folder.

Run from this folder with numpy, safetensors and ml_dtypes installed
(the files were made with numpy 2.4.6, safetensors 0.8.0, ml_dtypes 0.6.0):

    python3 make_fixtures.py

Every file holds the same 4 x 3 table. Its values are exact in f16 and
bf16, so each file must read back to exactly the same f32 rows (the test
`numpy_and_safetensors_fixtures_read_the_same_table` in tests/it/formats.rs).
"""

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

WORDS = ["cat", "dog", "köln", "[UNK]"]
TABLE = np.array(
    [
        [0.5, -0.0, 1.25],
        [2.0, -3.5, 0.125],
        [2.0**-10, 1024.0, -1.0],
        [2.0**-14, 0.25, 3.0],
    ]
)


def vocab(name):
    with open(name, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(w + "\n" for w in WORDS))


# C order, little-endian f4: what np.save writes for a float32 table.
np.save("table.npy", TABLE.astype("<f4"))
vocab("table.vocab.txt")
# Fortran order f8: np.save of a transposed float64 array.
np.save("table_f8_fortran.npy", np.asfortranarray(TABLE.astype("<f8")))
vocab("table_f8_fortran.vocab.txt")
# Big-endian f2.
np.save("table_f2_big.npy", TABLE.astype(">f2"))
vocab("table_f2_big.vocab.txt")
# Not 2-D: must be refused.
np.save("vector_1d.npy", TABLE[0].astype("<f4"))

# Two 2-D float tensors (so one must be named) and a 1-D one; the words
# are in table.vocab.txt, the default vocabulary name of table.safetensors.
save_file(
    {
        "emb.weight": TABLE.astype(np.float16),
        "emb.bias": TABLE[0].astype(np.float32),
        "proj.weight": TABLE.astype(ml_dtypes.bfloat16),
    },
    "table.safetensors",
    metadata={"format": "np"},
)
