#!/usr/bin/python3
"""Append to debian/copyright (DEP-5) a stanza per crate statically linked into hakit's
binaries, and the text of each licence they name (Debian policy 12.5).

    crate-copyright.py HEAD METADATA.json > copyright

METADATA is `cargo metadata --offline --locked --format-version 1 --filter-platform
HOST`. Linked = reached from hakit through normal dependencies only: dev and build
dependencies are not in the binary, nor is a proc-macro (it runs in the compiler) or
what only proc-macros depend on. Exit 2 on a licence it cannot name or find text for.
"""

import json
import re
import sys
from pathlib import Path

# SPDX id -> DEP-5 short name (Debian's names where they differ).
NAMES = {"MIT": "Expat", "LGPL-2.1-or-later": "LGPL-2.1+"}
# Licences whose text Debian ships in /usr/share/common-licenses.
COMMON = {"Apache-2.0": "Apache-2.0", "LGPL-2.1+": "LGPL-2.1", "MPL-2.0": "MPL-2.0"}
# Which of a crate's files hold which licence's text (lower-cased file names).
FILES = {
    "Expat": ["license-mit", "license-mit.md", "license.mit", "license", "license.md", "copying"],
    "Unlicense": ["unlicense", "license-unlicense"],
    "ISC": ["license-isc", "license", "license.md", "license-other-bits"],
    "BSD-2-Clause": ["license-bsd", "license-bsd-2-clause", "license"],
    "BSD-3-Clause": ["license-bsd", "license-bsd-3-clause", "license", "license.md"],
    "BSL-1.0": ["license-boost", "license-bsl", "license-bsl-1.0", "license"],
    "Unicode-3.0": ["license-unicode", "license-unicode.md", "license"],
    "Zlib": ["license-zlib", "license-zlib.md", "license"],
}
EXCEPTIONS = {"LLVM-exception": "LLVM"}


def fail(msg):
    print(f"crate-copyright.py: {msg}", file=sys.stderr)
    sys.exit(2)


def linked(meta):
    """The packages linked into the root's binaries, by id."""
    pkgs = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    seen, todo = set(), [root]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            if not any(k["kind"] is None for k in d["dep_kinds"]):
                continue
            if any("proc-macro" in t["kind"] for t in pkgs[d["pkg"]]["targets"]):
                continue
            todo.append(d["pkg"])
    seen.discard(root)
    return sorted((pkgs[i] for i in seen), key=lambda p: (p["name"], p["version"]))


def dep5(spdx, where):
    """An SPDX expression (or the old a/b form) as DEP-5 writes it, and its ids."""
    toks = re.findall(r"\(|\)|/|[A-Za-z0-9.+-]+", spdx.replace("/", " / "))
    out, ids, i = [], [], 0
    while i < len(toks):
        t = toks[i]
        if t in ("(", ")"):
            out.append(t)
        elif t.upper() == "OR" or t == "/":
            out.append("or")
        elif t.upper() == "AND":
            out.append("and")
        elif t.upper() == "WITH":
            exc = toks[i + 1]
            if exc not in EXCEPTIONS:
                fail(f"{where}: licence exception {exc} not known")
            out[-1] += f" with {EXCEPTIONS[exc]} exception"
            i += 1
        else:
            n = NAMES.get(t, t)
            if n not in COMMON and n not in FILES:
                fail(f"{where}: licence {t} not known (add it to NAMES/FILES)")
            out.append(n)
            ids.append(n)
        i += 1
    return " ".join(out).replace("( ", "(").replace(" )", ")"), ids


def cont(text):
    """A DEP-5 continuation: each line indented, blank ones as ' .'."""
    lines = text.expandtabs().rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(f" {line.rstrip()}" if line.strip() else " ." for line in lines)


def holder(line):
    """Whether a licence file's line names a copyright holder (not the terms' own
    "copyright notice", "copyright holders")."""
    s = line.strip()
    return bool(re.match(r"(?i)^(copyright\b|\(c\)|©)", s)) and not re.match(
        r"(?i)^copyright\s+(notice|holder|owner|and\b|,|\[yyyy\]|<year>)", s
    )


def licence_file(pkg, lic):
    d = Path(pkg["manifest_path"]).parent
    have = {f.name.lower(): f for f in d.iterdir() if f.is_file()}
    for name in FILES.get(lic, []):
        if name in have:
            text = have[name].read_text(errors="replace")
            # A file named LICENSE may hold another of its licences: check it is this one.
            marks = {
                "Expat": "Permission is hereby granted",
                "ISC": "Permission to use, copy, modify",
                "BSD-2-Clause": "Redistribution and use",
                "BSD-3-Clause": "Redistribution and use",
                "BSL-1.0": "Boost Software License",
                "Unlicense": "unencumbered",
                "Unicode-3.0": "UNICODE",
                "Zlib": "This software is provided 'as-is'",
            }
            if marks[lic].lower() in text.lower():
                return text
    return None


def ring_holders(d, have):
    found = []
    for f in sorted(d.rglob("*")):
        if f.suffix not in (".c", ".h", ".pl", ".S", ".rs", ".inl") or not f.is_file():
            continue
        for m in re.finditer(r"Copyright (?:\(c\) )?([0-9].*)", f.read_text(errors="replace")):
            h = " ".join(re.sub(r"[\s*/#]*$", "", m.group(1)).split())
            if h not in have and h not in found:
                found.append(h)
    return sorted(found)


def main():
    if len(sys.argv) != 3:
        fail("usage: crate-copyright.py HEAD METADATA.json")
    head = Path(sys.argv[1]).read_text()
    meta = json.loads(Path(sys.argv[2]).read_text())
    texts = {}  # DEP-5 name -> licence text (without holders' lines), the first found
    stanzas = []
    used = set()
    for p in linked(meta):
        where = f"{p['name']} {p['version']}"
        if not p.get("license"):
            fail(f"{where}: no licence in its Cargo.toml")
        expr, ids = dep5(p["license"], where)
        used.update(ids)
        holders = []
        for lic in ids:
            t = licence_file(p, lic)
            if t is None:
                continue
            for line in t.splitlines():
                s = re.sub(r"(?i)^copyright\s*(\(c\)|©)?\s*", "", line.strip())
                if holder(line) and s not in holders:
                    holders.append(s)
            if lic not in texts and lic not in COMMON:
                texts[lic] = t
        if p["name"] == "ring":
            # Its C and assembly are BoringSSL's and OpenSSL's (and Intel's, Google's,
            # CloudFlare's...): their files' own notices name the holders.
            holders += ring_holders(Path(p["manifest_path"]).parent, holders)
        holders = holders or p["authors"] or [f"the {p['name']} authors"]
        s = [
            f"Files: vendored/{p['name']}-{p['version']}/*",
            "Copyright:" + "\n".join(f" {h}" for h in holders),
            f"License: {expr}",
        ]
        if p["name"] == "ring":
            # Its LICENSE points at BoringSSL's licence and once_cell's: all of them.
            d = Path(p["manifest_path"]).parent
            parts = ["LICENSE", "LICENSE-other-bits", "LICENSE-BoringSSL"]
            parts += ["src/polyfill/once_cell/LICENSE-MIT"]
            if not all((d / f).is_file() for f in parts):
                fail(f"{where}: not all of {', '.join(parts)} found")
            def text(f):
                t = (d / f).read_text()
                # Lintian refuses the Apache licence copied out: Debian ships it.
                if "Apache License" in t and "Version 2.0, January 2004" in t:
                    return "The Apache License 2.0: /usr/share/common-licenses/Apache-2.0."
                return t

            s[-1] += "\n" + cont("\n\n".join(f"{f}:\n\n" + text(f) for f in parts))
        c = f"crate {p['name']} {p['version']}"
        if p["authors"]:
            c += ", by " + ", ".join(p["authors"])
        if p.get("repository"):
            c += f", {p['repository']}"
        s.append("Comment: " + c)
        stanzas.append("\n".join(s))
        for lic in ids:
            if lic not in COMMON and lic not in texts:
                fail(f"{where}: no {lic} text among its files")
    out = [head.rstrip()]
    out += stanzas
    named = re.findall(r"(?m)^License: (\S+)$", head)
    for lic in sorted(used):
        if lic in named:
            continue
        if lic in COMMON:
            body = (
                f"On Debian systems, the full text of the {lic} licence can be found in\n"
                f"the file /usr/share/common-licenses/{COMMON[lic]}."
            )
        else:
            # The holders are in each crate's Copyright field; keep the licence terms.
            body = "\n".join(
                line
                for line in texts[lic].splitlines()
                if not holder(line)
            )
        out.append(f"License: {lic}\n{cont(body)}")
    print("\n\n".join(out))


main()
