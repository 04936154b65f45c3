"""Structure-aware fuzzing of the decoder: mutated bitstreams of every codec and model kind, one process.

Each case takes a golden stream (tests/data/golden/), applies 1–3 mutations of one family and
decodes the result as ``lfcomp decode`` does (read, validate, check the budget, rebuild, render
the grid's corner and centre views and a fractional viewpoint):

    bytes       bit flips, truncations, insertions, deletions; the CRC is left as it is
    bytes+crc   the same inside the stream, then the CRC recomputed (the parser must hold alone)
    header      the JSON header, CRC recomputed: values replaced by other types, signs, huge and
                tiny numbers, NaN/inf, keys removed and added, lists shortened and lengthened
    specs       the array specs (names, shapes), the array sections resized to match or not
    arrays      float32/uint16 values: NaN, ±inf, huge, tiny, random bits
    sections    the code table and Huffman payload (QDLR) or the range-coded data (latent)

Outcomes: decoded, clean error (an ``LfcompError``: one line naming the file), crash (anything
else, or a multi-line message), timeout (over ``--timeout`` CPU seconds, or a wall-clock hang)
and over memory (a peak above ``--memory-gib`` over the process's baseline, or an allocation
failure). The decoder runs under ``DecodeLimits`` of that memory, so its own stated bound is
checked against what it really uses. Prints one table row per stream and family; exit status 1
if any case crashed, timed out or went over memory.

    python benchmarks/fuzz_bitstreams.py --cases 10000        # per stream
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import resource
import signal
import sys
import tempfile
import threading
import time
import traceback
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lfcomp.bitstream.container import join_sections, split_sections
from lfcomp.codecs.decoder import check_budget, open_bitstream
from lfcomp.codecs.limits import GIB, DecodeLimits
from lfcomp.errors import LfcompError

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden"
STREAMS = {"qdlr-nerf": "qdlr-nerf-smoke.lfc", "qdlr-nelf": "qdlr-nelf-smoke.lfc", "latent": "latent-smoke.lfc"}
FAMILIES = ("bytes", "bytes+crc", "header", "specs", "arrays", "sections")
OUTCOMES = ("decoded", "clean error", "crash", "timeout", "over memory")
STRANGE_VALUES = [None, True, False, 0, -1, 1, 2, 3, 7, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32, 2**53, 2**63,
                  2**64, 10**18, 10**100, -2**31, -10**9, 0.0, -0.0, 0.5, -1.5, 1e-300, 1e300, 1.7e308, math.nan,
                  math.inf, -math.inf, "", "x", "nerf", "nelf", "latent", "qdlr", [], [1], [1, 2], [0, 0],
                  [10**9, 10**9], [-1, 5], {}, {"a": 1}, "A" * 300, list(range(300))]
KEY_NAMES = ["codec", "format", "spec", "centroids", "kind", "field", "samples", "grid", "size", "depth", "width",
             "factor_ranks", "trunk0", "rgb", "geometry", "hidden", "levels", "warp", "extra", ""]


class CaseTimeout(Exception):
    """Raised by the CPU-time alarm inside a case."""


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Mutations


def _deflate(raw: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return packer.compress(raw) + packer.flush()


def _inflate(buf: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(buf)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:  # flip bits
            pos = min(pos, len(buf) - 1)
            buf[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # truncate
            del buf[pos:]
        elif op == 2:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.choice([1, 2, 4, 16, 200])))
        elif op == 3:  # delete a run
            del buf[pos:pos + rng.choice([1, 2, 4, 16])]
        elif buf:  # overwrite with 0x00 / 0xff / random
            end = min(len(buf), pos + rng.choice([1, 4, 8]))
            fill = rng.choice([0, 255, rng.randrange(256)])
            buf[pos:end] = bytes([fill]) * (end - pos)
        if not buf:
            break
    return bytes(buf)


def mutate_bytes_with_crc(data: bytes, rng: random.Random) -> bytes:
    body = mutate_bytes(data[:-4], rng)
    return body + zlib.crc32(body).to_bytes(4, "little")


def _nodes(obj, path=()):  # every (path, value) of a JSON tree
    yield path, obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _nodes(value, path + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _nodes(value, path + (i,))


def _any_strange(rng: random.Random):
    return copy.deepcopy(rng.choice(STRANGE_VALUES))  # a fresh object: the table is never changed


def _strange(value, rng: random.Random):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or rng.random() < 0.5:
        return _any_strange(rng)
    if isinstance(value, int) and rng.random() < 0.5:
        return value + rng.choice([-2, -1, 1, 2, value, -2 * value])
    return rng.choice([float(value), -value, value * 10, value * 1e6, value / 1e6, int(value) if math.isfinite(value)
                       else 0])


def mutate_json(tree, rng: random.Random):
    """One random change anywhere in a JSON tree (in place when possible); returns the tree."""
    path, node = rng.choice(list(_nodes(tree)))
    if not path:
        return _any_strange(rng) if rng.random() < 0.05 else tree
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    op = rng.randrange(6)
    if op == 0 and isinstance(parent, dict):
        del parent[last]
    elif op == 0 and isinstance(parent, list):
        parent.pop(last)
    elif op == 1 and isinstance(node, dict):
        node[rng.choice(KEY_NAMES)] = _any_strange(rng)
    elif op == 1 and isinstance(node, list):
        node.append(copy.deepcopy(rng.choice(node)) if node and rng.random() < 0.5 else _any_strange(rng))
    elif op == 2 and isinstance(node, list) and node:
        del node[rng.randrange(len(node)):]
    else:
        parent[last] = _strange(node, rng)
    return tree


def _header_parts(sections: dict[str, bytes]) -> list:
    return json.loads(_inflate(sections["header"]).decode("utf-8"))


def _reframe(version: int, sections: dict[str, bytes], header_parts=None) -> bytes:
    if header_parts is not None:
        sections = {**sections, "header": _deflate(json.dumps(header_parts, separators=(",", ":")).encode())}
    return join_sections(version, list(sections.values()))


def mutate_header(data: bytes, rng: random.Random) -> bytes:
    version, sections = split_sections(data)
    parts = _header_parts(sections)
    for _ in range(rng.randint(1, 3)):
        parts[0] = mutate_json(parts[0], rng)
    return _reframe(version, sections, parts)


def _resize(section: bytes, size: int, rng: random.Random) -> bytes:
    size = max(0, min(size, 1 << 20))
    return section[:size] + bytes(rng.randrange(256) for _ in range(max(0, size - len(section))))


def mutate_specs(data: bytes, rng: random.Random) -> bytes:
    version, sections = split_sections(data)
    parts = _header_parts(sections)
    for _ in range(rng.randint(1, 2)):
        which = rng.choice([1, 2])
        parts[which] = mutate_json(parts[which], rng) if parts[which] else [["x", [rng.choice([0, 1, 3, 2**20])]]]
    if rng.random() < 0.5:  # resize the array sections to what the new specs need, to pass the size check
        for which, name, itemsize in ((1, "float32", 4), (2, "uint16", 2)):
            try:
                need = int(sum(math.prod(shape) for _, shape in parts[which]) * itemsize)
            except (TypeError, ValueError, OverflowError):  # specs no longer a list of [name, shape]
                continue
            sections[name] = _resize(sections[name], need, rng)
    return _reframe(version, sections, parts)


def mutate_arrays(data: bytes, rng: random.Random) -> bytes:
    version, sections = split_sections(data)
    name = rng.choice([n for n in ("float32", "uint16") if sections[n]] or ["float32"])
    if not sections[name]:
        return mutate_bytes_with_crc(data, rng)
    dtype = np.dtype("<f4") if name == "float32" else np.dtype("<u2")
    values = np.frombuffer(sections[name], dtype=dtype).copy()
    np.seterr(over="ignore")  # ×10^6 of a large value overflows to inf on purpose
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(values.size)
        if name == "float32":
            values[i] = rng.choice([np.nan, np.inf, -np.inf, 0.0, -values[i], 3e38, 1e-38, 1e10, -1e10, values[i] * 1e6,
                                    np.frombuffer(rng.randbytes(4), dtype="<f4")[0]])
        else:
            values[i] = rng.choice([0, 1, 65535, rng.randrange(65536)])
    sections[name] = values.astype(dtype).tobytes()
    return _reframe(version, sections)


def mutate_sections(data: bytes, rng: random.Random) -> bytes:
    version, sections = split_sections(data)
    if "code_table" in sections and rng.random() < 0.6:
        table = bytearray(_inflate(sections["code_table"]))
        table = bytearray(mutate_bytes(bytes(table), rng)) if rng.random() < 0.7 else table
        if rng.random() < 0.3 and table:  # the symbol count: a varint at the start
            table[0:1] = bytes([rng.randrange(256)]) + (b"\xff\xff\xff\x0f" if rng.random() < 0.3 else b"")
        sections["code_table"] = _deflate(bytes(table))
    else:
        name = "payload" if "payload" in sections else "data"
        section = sections[name]
        op = rng.randrange(4)
        if op == 0:
            section = _resize(section, len(section) - 4 * rng.randint(1, 8), rng)
        elif op == 1:
            section = section + rng.randbytes(4 * rng.randint(1, 8))
        elif op == 2:
            section = bytes(len(section)) if rng.random() < 0.5 else rng.randbytes(len(section))
        else:
            section = mutate_bytes(section, rng)
        sections[name] = section
    return _reframe(version, sections)


MUTATORS = {"bytes": mutate_bytes, "bytes+crc": mutate_bytes_with_crc, "header": mutate_header,
            "specs": mutate_specs, "arrays": mutate_arrays, "sections": mutate_sections}


# ---------------------------------------------------------------------------------------------
# Running one case


def _peak_kib() -> int:
    with open("/proc/self/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0])


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def decode_case(path: Path, limits: DecodeLimits) -> None:
    """What ``lfcomp decode`` does, rendering the grid's corners, its centre and one fractional view."""
    model, _ = open_bitstream(path, torch.device("cpu"), limits)
    U, V = model.grid
    check_budget(model, U * V + 1, 4096, str(path), limits)
    positions = sorted({(0.0, 0.0), (0.0, V - 1.0), (U - 1.0, 0.0), (U - 1.0, V - 1.0),
                        ((U - 1) / 2, (V - 1) / 2)}) + [((U - 1) / 3, (V - 1) * 0.6)]
    views = model.render(positions, 4096, False)
    assert views.dtype == np.uint8 and views.shape == (len(positions), *model.size, 3)


def run_case(path: Path, limits: DecodeLimits, timeout: float, memory_kib: int) -> tuple[str, str]:
    """Outcome and, for a failure, a one-line description."""
    _reset_peak()
    baseline = _peak_kib()
    signal.setitimer(signal.ITIMER_PROF, timeout)  # CPU time of the process: immune to a busy machine
    try:
        decode_case(path, limits)
        outcome, detail = "decoded", ""
    except LfcompError as exc:
        message = str(exc)
        ok = "\n" not in message and message.startswith(str(path)) and len(message) < 400
        outcome, detail = ("clean error", "") if ok else ("crash", f"unclean message: {message[:300]!r}")
    except CaseTimeout:
        outcome, detail = "timeout", f"over {timeout} CPU seconds"
    except MemoryError:
        outcome, detail = "over memory", "MemoryError"
    except Exception as exc:  # noqa: BLE001 - everything else is what the fuzzer looks for
        text = str(exc).splitlines()[0][:200] if str(exc) else ""
        if isinstance(exc, RuntimeError) and ("allocate" in text or "memory" in text):
            outcome, detail = "over memory", text
        else:
            where = traceback.extract_tb(exc.__traceback__)[-1]
            outcome, detail = "crash", f"{type(exc).__name__}: {text} ({Path(where.filename).name}:{where.lineno})"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
    used = _peak_kib() - baseline
    if used > memory_kib and outcome != "crash":
        outcome, detail = "over memory", f"peak {used / 2**20:.2f} GiB over the baseline"
    return outcome, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="mutated streams per codec/kind (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=5.0, help="CPU seconds per case")
    parser.add_argument("--memory-gib", type=float, default=1.0, help="peak memory per case over the baseline")
    parser.add_argument("--streams", nargs="+", choices=list(STREAMS), default=list(STREAMS))
    parser.add_argument("--examples", type=int, default=5, help="failures to print per stream and family")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    limits = DecodeLimits(max_memory=int(args.memory_gib * GIB), max_macs=2e10)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        address_space = int(status.read().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space + int(4 * args.memory_gib * GIB), hard))  # never the machine

    def on_alarm(signum, frame):
        raise CaseTimeout

    signal.signal(signal.SIGPROF, on_alarm)
    current = {"case": "", "since": time.monotonic()}

    finished = threading.Event()

    def watchdog() -> None:  # a case stuck in native code never sees the CPU-time alarm
        while not finished.wait(5):
            if time.monotonic() - current["since"] > 20 * args.timeout:
                print(f"TIMEOUT (wall clock hang) in {current['case']}", flush=True)
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    started = time.monotonic()
    try:
        fuzz(args, limits, tallies, current)
    finally:
        finished.set()
        signal.signal(signal.SIGPROF, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    elapsed = time.monotonic() - started
    return report(args, tallies, elapsed)


def fuzz(args: argparse.Namespace, limits: DecodeLimits, tallies: dict[tuple[str, str], Tally],
         current: dict) -> None:
    """Run every case, counting outcomes per (stream, family)."""
    with tempfile.TemporaryDirectory(prefix="lfcomp-fuzz-") as tmp:
        for stream in args.streams:
            original = (GOLDEN / STREAMS[stream]).read_bytes()
            for case in range(args.cases):
                family = FAMILIES[case % len(FAMILIES)]
                mutated = MUTATORS[family](original, random.Random(f"{args.seed}-{stream}-{case}"))  # replayable
                path = Path(tmp) / f"{stream}-{case}.lfc"
                path.write_bytes(mutated)
                current.update(case=f"{stream} case {case} ({family})", since=time.monotonic())
                outcome, detail = run_case(path, limits, args.timeout, int(args.memory_gib * 2**20))
                tally = tallies[(stream, family)]
                tally.counts[outcome] += 1
                if outcome not in ("decoded", "clean error") and len(tally.examples) < args.examples:
                    keep = Path(tmp).parent / f"lfcomp-fuzz-{stream}-{case}.lfc"
                    keep.write_bytes(mutated)
                    tally.examples.append(f"case {case}: {outcome}: {detail} (stream kept as {keep})")
                path.unlink()


def report(args: argparse.Namespace, tallies: dict[tuple[str, str], Tally], elapsed: float) -> int:
    """Print the outcome table and the failures; 1 if any case crashed, timed out or went over memory."""
    print(f"\nFuzzing the decoder: {args.cases} mutated streams per codec/kind, seed {args.seed}, limits "
          f"{args.memory_gib:g} GiB / {args.timeout:g} CPU s per case, {elapsed:.0f} s in all\n")
    print("| stream | family | cases | " + " | ".join(OUTCOMES) + " |")
    print("|---|---|---:|" + "---:|" * len(OUTCOMES))
    totals: dict[str, Counter] = defaultdict(Counter)
    for (stream, family), tally in tallies.items():
        totals[stream].update(tally.counts)
        print(f"| {stream} | {family} | {sum(tally.counts.values())} | "
              + " | ".join(str(tally.counts[o]) for o in OUTCOMES) + " |")
    for stream, counts in totals.items():
        print(f"| **{stream}** | all | {sum(counts.values())} | " + " | ".join(str(counts[o]) for o in OUTCOMES) + " |")
    failures = [e for t in tallies.values() for e in t.examples]
    for line in failures:
        print(line)
    bad = sum(c[o] for c in totals.values() for o in ("crash", "timeout", "over memory"))
    print(f"\n{bad} cases crashed, timed out or went over memory")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
