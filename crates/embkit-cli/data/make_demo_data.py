#!/usr/bin/env python3
"""Builds authors.tsv.gz, the labelled text set `embkit demo` trains on.

Each row is `label<TAB>text`: label is austen, melville or shakespeare, and text is a
passage of 20-30 words made by joining consecutive hard-wrapped lines of one paragraph
(Austen, Melville) or one speech (Shakespeare) of the public-domain texts in shared/data.
2,000 passages per author are taken at evenly spaced positions through all of that
author's works, then the 6,000 rows are shuffled with a fixed seed. The output is
byte-identical on every run (gzip with mtime 0 and no file name).

Usage:
    python3 make_demo_data.py [--shared DIR] [--out FILE]

DIR defaults to ../../../../shared/data relative to this script (the workspace's
sibling `shared` folder); FILE defaults to authors.tsv.gz next to this script.
Python 3 standard library only.
"""

import argparse
import gzip
import io
import random
import re
import sys
from pathlib import Path

SEED = 20240611
PER_AUTHOR = 2000
MIN_WORDS = 20
MAX_WORDS = 30

AUSTEN_FILES = [
    "sense-and-sensibility.txt",
    "pride-and-prejudice.txt",
    "mansfield-park.txt",
    "emma.txt",
    "northanger-abbey.txt",
    "persuasion.txt",
]

HAS_LOWER = re.compile(r"[a-z]")
BRACKETED = re.compile(r"\[[^\]]*\]")
# A speaker prefix on the same line as the speech: "WIDOW. So, now they come".
INLINE_SPEAKER = re.compile(r"^[A-Z0-9][A-Z0-9' ]{2,}\.\s+(?=.*[a-z])")
# An ALL-CAPS stage direction in parentheses, possibly over several lines:
# "(SINGS, AND ALL FOLLOW)" in the dramatic chapters of Moby Dick.
CAPS_PARENTHESES = re.compile(r"\([^()a-z]*[A-Z][^()a-z]*\)")
# The headings of the cetology chapter of Moby Dick:
# "BOOK I. (FOLIO), CHAPTER I. (SPERM WHALE).--This whale, ..."
MOBY_BOOK = re.compile(r"^BOOK [IVX]+\. \([A-Z]+\),? CHAPTER [\dIVX]+\. \([^)]*\)[.,]?(--)?")
# A speaker line with a lower-case word: "PRINCE OF Morocco.", "KING HENRY the Sixth.".
MIXED_SPEAKER = re.compile(r"^[A-Z]{2,}[A-Z' ]*( [A-Za-z']+){0,4}\.$")
# Act and scene headings: "ACT I.", "SCENE 2. Rome.", "Scene,--Britain.".
ACT_OR_SCENE = re.compile(r"^(ACT|SCENE)\b|^(Act|Scene)(\s+[IVXL\d]+\b|[.,:])")
# "Enter HOLOFERNES, SIR NATHANIEL, and DULL." outside brackets.
BARE_DIRECTION = re.compile(r"^(Enter|Re-enter|Exit|Exeunt)\b.*\b[A-Z]{3,}")
PERSONS_HEADINGS = ("PERSONS REPRESENTED", "DRAMATIS PERSONAE", "PERSONS IN THE INDUCTION")
MOBY_CHAPTER = re.compile(r"^CHAPTER \d+\.")
AUSTEN_CHAPTER = re.compile(r"^chapter [0-9ivxlc]+\.?$", re.IGNORECASE)


def clean(line):
    """One line as it goes into a passage: no italics underscores, no tabs."""
    return " ".join(line.replace("_", "").split())


def paragraphs_of_prose(lines, skip=lambda line: False):
    """Blocks of consecutive kept lines. A blank line, a line without lower-case letters
    (chapter and volume headings, titles) or a line `skip` rejects ends a block."""
    block = []
    for line in lines:
        text = clean(line)
        if not text or not HAS_LOWER.search(text) or skip(text):
            if block:
                yield block
            block = []
            continue
        block.append(text)
    if block:
        yield block


def austen_paragraphs(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    # Skip the title block: the novel starts at its first chapter heading. Northanger
    # Abbey ends with an editor's note on the text, which is left out too.
    start = next(i for i, line in enumerate(lines) if AUSTEN_CHAPTER.match(line))
    end = next((i for i, line in enumerate(lines) if line == "A NOTE ON THE TEXT"), len(lines))
    return paragraphs_of_prose(lines[start:end], skip=lambda text: AUSTEN_CHAPTER.match(text))


def melville_paragraphs(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    # From "CHAPTER 1. Loomings." to the end of the Epilogue: this leaves out the
    # Gutenberg header, the Etymology and Extracts (quotations of other authors) and the
    # Gutenberg licence footer.
    start = next(i for i, line in enumerate(lines) if line.startswith("CHAPTER 1. Loomings"))
    end = next(i for i, line in enumerate(lines) if line.startswith("End of Project Gutenberg"))
    return paragraphs_of_prose(lines[start:end], skip=lambda text: MOBY_CHAPTER.match(text))


def shakespeare_paragraphs(path):
    """Speeches (and poem stanzas), without speaker names, stage directions, act and
    scene headings, titles and the lists of persons."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    out = [[]]  # the last block is the one being filled
    in_persons = False
    in_direction = False
    for raw in lines:
        line = raw.strip()
        if line.upper().startswith(PERSONS_HEADINGS):
            in_persons = True
            out.append([])
            continue
        if in_persons:
            if not re.match(r"^(ACT|SCENE|PROLOGUE|INDUCTION)\b", line, re.IGNORECASE):
                continue
            in_persons = False
        # Stage directions in brackets, possibly over several lines.
        if in_direction:
            if "]" not in line:
                continue
            in_direction = False
            line = line.split("]", 1)[1]
        line = BRACKETED.sub(" ", line)
        if "[" in line:
            in_direction = True
            line = line.split("[", 1)[0]
        text = clean(line)
        if (
            not text
            or not HAS_LOWER.search(text)
            or ACT_OR_SCENE.match(text)
            or BARE_DIRECTION.match(text)
            or MIXED_SPEAKER.match(text)
        ):
            out.append([])  # speaker names, headings and blank lines end a speech
            continue
        speaker = INLINE_SPEAKER.match(text)
        if speaker:
            out.append([])
            text = text[speaker.end():]
        out[-1].append(text)
    return [block for block in out if block]


def tidy(block):
    """Drops cetology headings, ALL-CAPS stage directions in parentheses and a speaker
    name at the start."""
    text = MOBY_BOOK.sub("", "\n".join(block))
    text = CAPS_PARENTHESES.sub(" ", text)
    speaker = INLINE_SPEAKER.match(text)
    if speaker:
        text = text[speaker.end():]
    return [line for line in (clean(line) for line in text.split("\n")) if line]


def passages(paragraphs):
    """Joins consecutive lines of each paragraph until a passage has at least MIN_WORDS
    words, cuts it to MAX_WORDS, and starts the next passage at the next line. What is
    left at the end of a paragraph is dropped when it is shorter than MIN_WORDS."""
    for block in paragraphs:
        words = []
        for line in tidy(block):
            words.extend(line.split())
            if len(words) >= MIN_WORDS:
                yield " ".join(words[:MAX_WORDS])
                words = []


def evenly_spaced(items, n):
    if len(items) < n:
        sys.exit(f"only {len(items)} passages, need {n}")
    return [items[(2 * i + 1) * len(items) // (2 * n)] for i in range(n)]


def main():
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shared_pos", nargs="?", type=Path, metavar="SHARED_DIR")
    parser.add_argument("--shared", type=Path, help="the shared/data folder")
    parser.add_argument("--out", type=Path, default=here / "authors.tsv.gz")
    args = parser.parse_args()
    shared = args.shared or args.shared_pos or (here / "../../../../shared/data")
    shared = shared.resolve()

    by_author = {
        "austen": [
            p
            for name in AUSTEN_FILES
            for p in passages(austen_paragraphs(shared / "jane-austen-novels" / name))
        ],
        "melville": list(passages(melville_paragraphs(shared / "moby-dick" / "moby-dick.txt"))),
        "shakespeare": list(
            passages(
                shakespeare_paragraphs(
                    shared / "shakespeare-works" / "shakespeare-modern-42-works.txt.gz"
                )
            )
        ),
    }

    rows = []
    for label, candidates in by_author.items():
        chosen = evenly_spaced(candidates, PER_AUTHOR)
        print(f"{label}: {len(candidates)} passages, {len(chosen)} taken", file=sys.stderr)
        rows.extend((label, text) for text in chosen)
    random.Random(SEED).shuffle(rows)

    body = "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows)
    raw = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(body.encode("utf-8"))
    args.out.write_bytes(raw.getvalue())
    words = sum(len(text.split()) for _, text in rows)
    print(
        f"wrote {args.out}: {len(rows)} rows, {words} words, "
        f"{len(body.encode('utf-8'))} bytes unpacked, {len(raw.getvalue())} bytes gzipped",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
