"""Install WordNet 3.0 for nltk offline, from Debian's `wordnet-base` / `wordnet-sense-index` packages.

METEOR (nltk `meteor_score`, used by `modeling_hsanet/metrics/molecule_text_metrics.py`) needs WordNet, and
`nltk.download("wordnet")` needs the network. Debian ships the same WordNet 3.0 database under `/usr/share/wordnet`.
This script:

1. installs `wordnet-base wordnet-sense-index` with apt-get when `/usr/share/wordnet` is missing and it runs as root
   with apt-get available (CI containers);
2. copies (nltk refuses symlinks that leave its data path) the database files into
   `<nltk_data>/corpora/wordnet/`, by default `<sys.prefix>/nltk_data`, which nltk searches by itself, so that no
   `NLTK_DATA` variable is needed when the virtual environment's Python runs;
3. writes the `lexnames` file that Debian omits, from the table in `man 5 lexnames`
   (`/usr/share/man/man5/lexnames.5WN.gz`), or from the same WordNet 3.0 table kept below when the man page is not
   installed (Docker images often drop man pages): lines `NN<TAB>name<TAB>pos`, pos 1 noun, 2 verb, 3 adj, 4 adv;
4. checks in a fresh interpreter, without `NLTK_DATA`, that `nltk.translate.meteor_score` runs.

It is idempotent, and when it cannot install WordNet it prints a warning and exits 0: the metrics module then raises
its own error saying how to install WordNet, and `meteor=False` skips METEOR explicitly.

Usage: `.venv/bin/python utils/install_wordnet.py [--source /usr/share/wordnet] [--nltk-data DIR]`
(`make install` runs it).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys

DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
DEFAULT_SOURCE = "/usr/share/wordnet"
LEXNAMES_MAN_PAGE = "/usr/share/man/man5/lexnames.5WN.gz"
# The files nltk's WordNetCorpusReader reads (index.sense and cntlist.rev for lemma keys and counts).
REQUIRED_FILES = tuple(
    f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")
) + tuple(f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv"))
POS_CODES = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
# WordNet 3.0's lexicographer files, numbered 00-44 (`man 5 lexnames`); used only when the man page is absent.
WORDNET30_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
    "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object "
    "noun.person noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape "
    "noun.state noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition "
    "verb.consumption verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession "
    "verb.social verb.stative verb.weather adj.ppl"
).split()

CHECK_SCRIPT = """
import nltk
from nltk.translate.meteor_score import meteor_score
score = meteor_score([["the", "cat", "sat", "on", "the", "mat"]], ["the", "cat", "was", "on", "the", "mat"])
path = nltk.data.find("corpora/wordnet")
print(f"{score:.4f} {path}")
"""


def warn(message: str) -> None:
    print(f"WARNING (install_wordnet): {message}", file=sys.stderr)


def info(message: str) -> None:
    print(f"install_wordnet: {message}")


def lexnames_lines(man_page: str = LEXNAMES_MAN_PAGE) -> tuple[list[str], str]:
    """The `lexnames` file's lines `NN\\tname\\tpos`, and where the table came from."""
    names, origin = WORDNET30_LEXNAMES, "the WordNet 3.0 table kept in this script"
    if os.path.exists(man_page):
        with gzip.open(man_page, "rt", encoding="utf-8", errors="replace") as handle:
            rows = re.findall(r"^(\d\d)\t(\S+)\s*\t", handle.read(), flags=re.MULTILINE)
        parsed = [name for _, name in sorted(rows, key=lambda row: int(row[0]))]
        numbers = sorted(int(number) for number, _ in rows)
        if numbers == list(range(len(WORDNET30_LEXNAMES))) and parsed == WORDNET30_LEXNAMES:
            names, origin = parsed, man_page
        else:
            warn(f"{man_page} does not hold the expected 45-row table; using the WordNet 3.0 table instead")
    return [f"{number:02d}\t{name}\t{POS_CODES[name.split('.')[0]]}" for number, name in enumerate(names)], origin


def apt_install() -> bool:
    """Install the Debian packages when running as root with apt-get; True when the files are there afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", *DEBIAN_PACKAGES]
    info("running " + " ".join(command))
    if subprocess.run(command, env=env).returncode != 0:  # fresh containers have empty package lists
        subprocess.run(["apt-get", "update"], env=env)
        subprocess.run(command, env=env)
    return os.path.isdir(DEFAULT_SOURCE)


def target_is_complete(target: str, source: str) -> bool:
    """The files nltk reads and `lexnames` are in `target`, and every regular file of `source` is copied there."""
    if not all(os.path.isfile(os.path.join(target, name)) for name in (*REQUIRED_FILES, "lexnames")):
        return False
    if os.path.isdir(source):
        for name in os.listdir(source):
            source_file, target_file = os.path.join(source, name), os.path.join(target, name)
            if os.path.isfile(source_file) and (
                not os.path.isfile(target_file) or os.path.getsize(target_file) != os.path.getsize(source_file)
            ):
                return False
    return True


def copy_wordnet(source: str, target: str) -> list[str]:
    """Copy the regular files of `source` (not its bin/, pixmaps/ ... folders) into `target`; return their names."""
    os.makedirs(target, exist_ok=True)
    copied = []
    for name in sorted(os.listdir(source)):
        source_file = os.path.join(source, name)
        if not os.path.isfile(source_file):
            continue
        target_file = os.path.join(target, name)
        if os.path.islink(target_file):
            os.remove(target_file)
        shutil.copyfile(source_file, target_file)  # follows links: a real copy
        copied.append(name)
    return copied


def check_meteor(nltk_data: str) -> tuple[bool, str]:
    """Run METEOR in a fresh interpreter without NLTK_DATA (nltk must find `<sys.prefix>/nltk_data` by itself)."""
    env = {key: value for key, value in os.environ.items() if key != "NLTK_DATA"}
    default_dir = os.path.join(sys.prefix, "nltk_data")
    if os.path.realpath(nltk_data) != os.path.realpath(default_dir):
        env["NLTK_DATA"] = nltk_data
    result = subprocess.run([sys.executable, "-c", CHECK_SCRIPT], env=env, capture_output=True, text=True)
    if result.returncode == 0:
        return True, result.stdout.strip()
    return False, (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="WordNet database folder (Debian: %(default)s)")
    parser.add_argument(
        "--nltk-data",
        default=os.path.join(sys.prefix, "nltk_data"),
        help="nltk data folder to install into (default: %(default)s, searched by nltk without NLTK_DATA)",
    )
    args = parser.parse_args(argv)
    target = os.path.join(args.nltk_data, "corpora", "wordnet")

    if target_is_complete(target, args.source):
        ok, detail = check_meteor(args.nltk_data)
        if ok:
            info(f"WordNet already installed in {target}; METEOR check: {detail}")
            return 0
        warn(f"{target} looks complete but METEOR fails ({detail}); reinstalling")

    source = args.source
    if not all(os.path.isfile(os.path.join(source, name)) for name in REQUIRED_FILES):
        if source == DEFAULT_SOURCE and apt_install():
            info(f"installed {' '.join(DEBIAN_PACKAGES)}")
        if not all(os.path.isfile(os.path.join(source, name)) for name in REQUIRED_FILES):
            warn(
                f"WordNet was not installed: {source} lacks the WordNet database files. Install the Debian packages "
                f"(`apt-get install {' '.join(DEBIAN_PACKAGES)}`, as root) and run this script again, or run "
                "`python -c \"import nltk; nltk.download('wordnet')\"` where the network is available. "
                "Until then METEOR raises an error (pass meteor=False to skip it)."
            )
            return 0

    copied = copy_wordnet(source, target)
    lines, origin = lexnames_lines()
    with open(os.path.join(target, "lexnames"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    info(f"copied {len(copied)} files from {source} to {target}; wrote lexnames ({len(lines)} rows) from {origin}")

    ok, detail = check_meteor(args.nltk_data)
    if ok:
        info(f"METEOR check passed: {detail}")
    else:
        warn(f"WordNet files were copied to {target} but nltk's METEOR still fails: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
