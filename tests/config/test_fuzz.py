"""Config fuzzing: mutated station files load or fail with one ConfigError line, never a traceback.

The shipped configs (``firmware_config/``, with their calibration files beside them) are
mutated with a fixed seed: bytes flipped, lines dropped or duplicated, values replaced by NaN,
inf, huge numbers, empty strings, NUL bytes, deeply nested arrays, wildcards in the topic
prefix, binary garbage. Every mutation must either load or raise
:class:`~edge.errors.ConfigError` whose message is one line naming the file.
"""

from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from edge.config import load_config
from edge.errors import ConfigError
from tests.helpers.data import REPO

SOURCES = ("beach_station.toml", "gpr_unit.toml")
MUTATIONS_PER_FILE = 150
VALUES = (
    "nan", "inf", "-inf", "1e400", '""', '"\\u0000"', "[" * 400 + "]" * 400, '"#"', '"a/+"',
    "true", "-1", "0", '"x" * 300', "[[1, 2], {a = 1}]", '"' + "x" * 300 + '"',
)  # fmt: skip


def _mutate(rng: random.Random, text: str) -> bytes:
    lines = text.splitlines()
    kind = rng.randrange(6)
    if kind == 0:  # replace a value
        i = rng.randrange(len(lines))
        if "=" in lines[i]:
            key = lines[i].split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(VALUES)}"
    elif kind == 1:  # drop a line
        del lines[rng.randrange(len(lines))]
    elif kind == 2:  # duplicate a line (duplicate keys, duplicate tables)
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
    elif kind == 3:  # flip bytes (non-UTF-8 included)
        raw = bytearray("\n".join(lines).encode())
        for _ in range(rng.randint(1, 8)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)
    elif kind == 4:  # binary garbage
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
    else:  # the topic prefix / host / a path
        field = rng.choice(["topic_prefix", "host", "path", "file", "intrinsics"])
        value = rng.choice(["#", "a/+", "", "a//b", "x\\u0000y", "/" * 300])
        key = re.compile(rf"\s*{field}\s*=")
        lines = [f'{field} = "{value}"' if key.match(ln) else ln for ln in lines]
    return "\n".join(lines).encode()


@pytest.mark.parametrize("name", SOURCES)
def test_mutated_configs_give_one_line_or_load(tmp_path, name):
    shutil.copytree(REPO / "firmware_config", tmp_path / "cfg")
    original = (tmp_path / "cfg" / name).read_text()
    path = tmp_path / "cfg" / name
    load_config(path)  # the shipped file itself is valid
    rng = random.Random(f"geoedge-{name}")
    refused = 0
    for _ in range(MUTATIONS_PER_FILE):
        path.write_bytes(_mutate(rng, original))
        try:
            load_config(path)
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message and message.startswith(str(path)), message
            refused += 1
    # The fuzzer really produced bad files (most of them), not harmless edits.
    assert refused > MUTATIONS_PER_FILE // 3


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (b"\xff\xfe[station]\n", "not UTF-8 text"),
        (b"a = " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested too deeply"),
        (
            b"[station]\nid = 'x'\ncrs = 'EPSG:5186'\nkind = 'gpr'\n[gpr]\nsource = 'tcp://h:1'\n"
            b"velocity_m_per_ns = nan\n",
            "velocity_m_per_ns",
        ),
        (
            b"[station]\nid = 'x'\ncrs = 'EPSG:5186'\nkind = 'gpr'\n[gpr]\nsource = 'tcp://h:1'\n"
            b"[mqtt]\ntopic_prefix = 'a/+'\n",
            "mqtt.topic_prefix: expected topic levels",
        ),
        (
            b"[station]\nid = 'x'\ncrs = 'EPSG:5186'\nkind = 'gpr'\n[gpr]\nsource = 'tcp://h:1'\n"
            b"[mqtt]\nhost = ''\n",
            "mqtt.host",
        ),
        (
            b"[station]\nid = 'x'\ncrs = 'EPSG:5186'\nkind = 'gpr'\n[gpr]\nsource = 'tcp://h:99999'\n",
            "gpr.source: expected tcp://HOST:PORT",
        ),
        (
            b"[station]\nid = 'x'\ncrs = 'EPSG:5186'\nkind = 'gpr'\n[gpr]\nsource = '"
            + b"x" * 300
            + b".DZT'\n",
            "gpr.source: a path component is longer than 255 bytes",
        ),
    ],
    ids=[
        "non-utf8",
        "deep-nesting",
        "nan",
        "wildcard-prefix",
        "empty-host",
        "bad-port",
        "long-name",
    ],
)
def test_each_fuzzed_case_is_one_line_naming_the_problem(tmp_path: Path, text: bytes, said: str):
    path = tmp_path / "station.toml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "\n" not in str(err.value) and said in str(err.value), str(err.value)
