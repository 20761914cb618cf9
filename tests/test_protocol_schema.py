"""The protocol schema is the single source: generated C and Python tables must match it."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "protocol"))
import gen  # noqa: E402

from blebridge import protocol  # noqa: E402


def test_generated_files_match_schema():
    result = subprocess.run([sys.executable, str(ROOT / "protocol" / "gen.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_python_methods_match_schema():
    schema = gen.load()
    assert {m["name"]: m["id"] for m in schema["method"]} == \
        {name: m.id for name, m in protocol.METHODS.items()}


def test_python_events_match_schema():
    schema = gen.load()
    assert {e["code"]: e["name"] for e in schema["event"]} == \
        {code: e.name for code, e in protocol.EVENTS.items()}


def test_c_header_defines_every_method_and_event_of_the_schema():
    header = (ROOT / "firmware" / "core" / "bb_proto.h").read_text()
    defined = dict(re.findall(r"#define (BB_(?:M|EV)_\w+) (\d+)", header))
    schema = gen.load()
    for m in schema["method"]:
        assert defined[f"BB_M_{m['name'].upper()}"] == str(m["id"])
    for e in schema["event"]:
        assert defined[f"BB_EV_{e['name']}"] == str(e["code"])


def test_c_tables_agree_with_python_tables_when_compiled(tmp_path):
    """Compile the generated C tables and print them; compare with the Python tables."""
    prog = tmp_path / "dump.c"
    prog.write_text(r'''
#include <stdio.h>
#include "bb_proto.h"
int main(void) {
    for (int i = 0; i < BB_METHOD_COUNT; i++) {
        const bb_method_spec_t *m = &bb_methods[i];
        printf("M %u %s %u %u", m->id, m->name, m->argc_min, m->argc_max);
        for (int a = 0; a < m->argc_max; a++)
            printf(" %u:%d:%u", m->args[a].type, m->args[a].nullable, m->args[a].max);
        printf("\n");
    }
    for (int i = 0; i < BB_EVENT_COUNT; i++) {
        const bb_event_spec_t *e = &bb_events[i];
        printf("E %u %s %d %d %u\n", e->code, e->name, e->droppable, e->question, e->nfields);
    }
    return 0;
}
''')
    exe = tmp_path / "dump"
    core = ROOT / "firmware" / "core"
    build = subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-I", str(core), str(prog),
                            str(core / "bb_proto.c"), "-o", str(exe)], capture_output=True, text=True)
    if build.returncode != 0:
        pytest.fail(build.stderr)
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()
    type_ids = {name: i for i, name in enumerate(gen.TYPES)}
    expected = []
    for m in protocol.METHODS.values():
        line = f"M {m.id} {m.name} {m.argc_min} {len(m.args)}"
        for f in m.args:
            line += f" {type_ids[f.type]}:{int(f.nullable)}:{f.max}"
        expected.append(line)
    for e in protocol.EVENTS.values():
        expected.append(f"E {e.code} {e.name} {int(e.droppable)} {int(e.question)} {len(e.fields)}")
    assert out == expected


def test_status_codes_below_256_are_errno_values():
    import errno
    for name, value in protocol.STATUS.items():
        if 0 < value < 256:
            assert getattr(errno, name) == value, name


def test_protocol_readme_tables_match_schema():
    result = subprocess.run([sys.executable, str(ROOT / "protocol" / "gen_docs.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
