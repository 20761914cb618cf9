#!/usr/bin/env python3
"""Regenerate the reference tables in protocol/README.md from protocol/schema.toml.

    python protocol/gen_docs.py           # rewrite the tables between the markers
    python protocol/gen_docs.py --check   # exit 1 if README.md is out of date
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import gen

README = gen.ROOT / "protocol" / "README.md"
BEGIN = "<!-- BEGIN GENERATED TABLES (protocol/gen_docs.py) -->"
END = "<!-- END GENERATED TABLES -->"


def fmt_field(f: list) -> str:
    name, base, nullable, limit = gen.parse_field(f)
    t = base + ("?" if nullable else "")
    return f"{name}: {t}" + (f" ≤{limit}" if limit else "")


def one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def tables(s: dict) -> str:
    o = [f"Protocol version **{s['version']['major']}.{s['version']['minor']}**.", "",
         "### Limits", "", "| name | value |", "|---|---|"]
    o += [f"| {k} | {v} |" for k, v in s["limits"].items()]
    o += ["", "### Status codes", "", "| value | name | meaning |", "|---|---|---|"]
    o += [f"| {st['value']} | {st['name']} | {one_line(st['doc'])} |" for st in s["status"]]
    o += ["", "### Methods (host → board)", "", "| id | method | args | result | notes |", "|---|---|---|---|---|"]
    for m in s["method"]:
        args = ", ".join(fmt_field(f) for f in m["args"])
        o.append(f"| {m['id']} | `{m['name']}` | {args} | {m['result']} | {one_line(m.get('doc', ''))} |")
    o += ["", "### Events (board → host)", "", "| code | event | fields | kind | notes |", "|---|---|---|---|---|"]
    for e in s["event"]:
        kind = "question" if e.get("question") else ("droppable" if e.get("droppable") else "reliable")
        flds = ", ".join(fmt_field(f) for f in e["fields"])
        o.append(f"| {e['code']} | `{e['name']}` | {flds} | {kind} | {one_line(e.get('doc', ''))} |")
    o += ["", "### Constants", ""]
    for group, items in s["constants"].items():
        o.append(f"- **{group}**: " + ", ".join(f"{k}={v:#x}" if group == "flag" else f"{k}={v}"
                                                  for k, v in items.items()))
    return "\n".join(o)


def render(current: str, s: dict) -> str:
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{tables(s)}\n{END}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    current = README.read_text()
    new = render(current, gen.load())
    if a.check:
        if new != current:
            print("protocol/README.md is out of date: run python protocol/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
