#!/usr/bin/env python3
"""mkseeds.py — writes the seed corpora of the fuzz targets (tests/fuzz/corpus/)
from the shared fixtures and from files that qcare itself writes.

    python3 tests/fuzz/mkseeds.py [FIXTURES [QCARE [OUT]]]
        FIXTURES  ../shared/fixtures   QCARE  build/qcare   OUT  build-fuzz/seeds

The seeds are then merged into tests/fuzz/corpus/ (run.sh ... merge keeps
only what adds coverage); tests/fuzz/README.md lists where each kind comes
from. Everything is deterministic (a fixed-seed generator for weight bytes).

What it writes, per target:
  fuzz_tokenizer_json  the fixture Qwen tokenizer.json cut down to a "micro"
      vocabulary (the 256 byte tokens, the first 64 merges and their results,
      the 26 added tokens renumbered after them), in the layouts tokenizer.json
      files use; a few hand-made tokenizers and malformed ones of test_tokenizer
  fuzz_gguf  micro Qwen2/Qwen3 models (hidden 32, 1 layer, that vocabulary):
      a Hugging Face folder written here, converted by `qcare convert` to
      every type it writes; a model holding every block type (the K-quants on
      its 256-wide ffn_down rows); the fixture GGUFs' metadata with the micro
      tokenizer and no tensors; GGUF v2; alignment 64
  fuzz_safetensors  the micro folders' model.safetensors, hand-made small
      files (every dtype, a scalar, an empty tensor, a misaligned header), and
      model.safetensors.index.json files for the target's fixed shards
  fuzz_config  config.json and generation_config.json as `qcare mkmodel` writes
      them for every preset, and variants
  fuzz_tokenize  the texts of golden/tokenizer.jsonl (plain, with special
      tokens, made valid) and their ids (as they are, folded)
  fuzz_chat, fuzz_hub  hand-made message lists and hub answers
  fuzz_api, fuzz_sse  request bodies of every POST endpoint; stop strings
      and reply pieces (split UTF-8, stop strings across pieces)
  fuzz_records  the /api/records/... URLs of the README and test_recserve
      (every list argument, cursors of both orders, dates, erasures, exports)
  fuzz_rules  data/safety-rules.txt, its blocks one statement kind at a
      time, test_safety's small files and malformed ones
"""
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import time

FIX = sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures"
QCARE = sys.argv[2] if len(sys.argv) > 2 else "build/qcare"
OUT = sys.argv[3] if len(sys.argv) > 3 else "build-fuzz/seeds"
rng = random.Random(20260801)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def jdump(obj, pretty=False):
    if pretty:
        return json.dumps(obj, ensure_ascii=False, indent=2)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# ==== the micro vocabulary ====

TOK = json.load(open(os.path.join(FIX, "tokenizer", "tokenizer.json"), encoding="utf-8"))
VOCAB = TOK["model"]["vocab"]
INV = {i: s for s, i in VOCAB.items()}
N_MERGES = 64
MERGES = TOK["model"]["merges"][:N_MERGES]  # pairs ["a", "b"]
micro = [INV[i] for i in range(256)]
for a, b in MERGES:
    if a + b not in micro:
        micro.append(a + b)
MICRO_VOCAB = {s: i for i, s in enumerate(micro)}
N_BPE = len(micro)
ADDED = []
for k, a in enumerate(TOK["added_tokens"]):
    a = dict(a)
    a["id"] = N_BPE + k
    ADDED.append(a)
N_TOKENS = N_BPE + len(ADDED)
ID_OF = {a["content"]: a["id"] for a in ADDED}


def micro_tokenizer(**model_over):
    t = {k: v for k, v in TOK.items() if k not in ("model", "added_tokens")}
    t["added_tokens"] = ADDED
    m = {k: v for k, v in TOK["model"].items() if k not in ("vocab", "merges")}
    m["vocab"] = MICRO_VOCAB
    m["merges"] = MERGES
    m.update(model_over)
    t["model"] = m
    return t


def tokenizer_seeds():
    T = "fuzz_tokenizer_json"
    t = micro_tokenizer()
    put(T, "micro.json", jdump(t))
    put(T, "micro-pretty.json", jdump(t, pretty=True))
    t = micro_tokenizer(merges=[a + " " + b for a, b in MERGES])
    put(T, "micro-merges-strings.json", jdump(t))
    t = micro_tokenizer(ignore_merges=True, unk_token="<|endoftext|>")
    t["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "NFC"}]}
    t["added_tokens"] = [dict(a, lstrip=True, rstrip=True, single_word=True, normalized=True)
                         if i % 3 == 0 else a for i, a in enumerate(ADDED)]
    put(T, "micro-flags.json", jdump(t))
    t = micro_tokenizer()
    t["normalizer"] = None
    t["decoder"] = None
    t["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                          "use_regex": True}
    put(T, "micro-bytelevel.json", jdump(t))
    t = micro_tokenizer()
    steps = t["pre_tokenizer"]["pretokenizers"]
    t["pre_tokenizer"]["pretokenizers"] = [
        {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": False},
        {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}|[\\s\\S]"}, "behavior": "Isolated"},
    ] + steps
    put(T, "micro-splits.json", jdump(t))
    # test_tokenizer's tiny tokenizer and some of its malformed files
    pre = '{"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}, '
    voc = '"vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "\\u0120": 5, "aa": 6}'
    put(T, "tiny.json", pre + '"normalizer": null, "added_tokens": [{"id": 7, "content": "<x>", "special": true}, '
        '{"id": 8, "content": "<y>", "special": false, "lstrip": true, "rstrip": true}], '
        '"model": {"type": "BPE", ' + voc + ', "merges": ["a b", ["ab", "c"], "a a"]}}')
    put(T, "bad-vocabdup.json", pre + '"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}')
    put(T, "bad-mergeunknown.json", pre + '"model": {"type": "BPE", ' + voc + ', "merges": ["a b", "a zz"]}}')
    put(T, "bad-regex.json", '{"pre_tokenizer": {"type": "Sequence", "pretokenizers": ['
        '{"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"},'
        '{"type": "ByteLevel", "use_regex": false}]}, "model": {"type": "BPE", ' + voc + ', "merges": []}}')
    put(T, "bad-hugeid.json", pre + '"model": {"type": "BPE", "vocab": {"a": 99999999999}, "merges": []}}')


# ==== GGUF ====

GGUF_T = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "f32": 6, "bool": 7, "str": 8, "arr": 9,
          "u64": 10, "i64": 11, "f64": 12}
PACK = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
# ggml type: (id, block elements, block bytes)
GGML = {"f32": (0, 1, 4), "f16": (1, 1, 2), "q4_0": (2, 32, 18), "q4_1": (3, 32, 20), "q5_0": (6, 32, 22),
        "q5_1": (7, 32, 24), "q8_0": (8, 32, 34), "q2_K": (10, 256, 84), "q3_K": (11, 256, 110),
        "q4_K": (12, 256, 144), "q5_K": (13, 256, 176), "q6_K": (14, 256, 210), "bf16": (30, 1, 2)}


def rd_gguf(path):
    """The metadata of a GGUF file as [(key, type, value)] (arrays: (elem type, list))."""
    f = open(path, "rb")

    def rd(fmt):
        return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))

    def rstr():
        (n,) = rd("Q")
        return f.read(n)

    def rval(t):
        if t in PACK:
            return rd(PACK[t])[0]
        if t == 8:
            return rstr()
        (at, n) = rd("IQ")
        return (at, [rval(at) for _ in range(n)])

    assert f.read(4) == b"GGUF"
    _, _, nkv = rd("IQQ")
    kv = []
    for _ in range(nkv):
        k = rstr().decode()
        (t,) = rd("I")
        kv.append((k, t, rval(t)))
    return kv


def enc_val(t, v):
    if t in PACK:
        return struct.pack("<" + PACK[t], v)
    if t == 8:
        v = v if isinstance(v, bytes) else v.encode()
        return struct.pack("<Q", len(v)) + v
    at, items = v
    return struct.pack("<IQ", at, len(items)) + b"".join(enc_val(at, x) for x in items)


def wr_gguf(kv, tensors, version=3, align=32):
    """kv: [(key, type, value)]; tensors: [(name, ne (innermost first), ggml type name, bytes)]."""
    out = [b"GGUF", struct.pack("<IQQ", version, len(tensors), len(kv))]
    for k, t, v in kv:
        out.append(struct.pack("<Q", len(k)) + k.encode() + struct.pack("<I", t) + enc_val(t, v))
    off = 0
    offs = []
    for name, ne, ty, data in tensors:
        offs.append(off)
        off += (len(data) + align - 1) // align * align
    for (name, ne, ty, data), o in zip(tensors, offs):
        out.append(struct.pack("<Q", len(name)) + name.encode() + struct.pack("<I", len(ne)))
        out.append(struct.pack("<" + "Q" * len(ne), *ne) + struct.pack("<IQ", GGML[ty][0], o))
    head = b"".join(out)
    head += b"\0" * (-len(head) % align)
    body = b""
    for name, ne, ty, data in tensors:
        body += data + b"\0" * (-len(data) % align)
    return head + body


def weight_bytes(n):
    """n bytes of small values: every f16/bf16/f32 made of them is finite and below 1."""
    return bytes(rng.randrange(0, 0x3C) for _ in range(n))


def tensor(name, rows, cols, ty):
    _, be, bb = GGML[ty]
    ne = (cols,) if rows == 0 else (cols, rows)
    assert cols % be == 0, (name, cols, ty)
    return (name, ne, ty, weight_bytes(max(rows, 1) * cols // be * bb))


def micro_tok_kv(token_types=True):
    toks = [s.encode() for s in micro] + [a["content"].encode() for a in ADDED]
    types = [1] * N_BPE + [3 if a["special"] else 4 for a in ADDED]
    toks += [b"[PAD%d]" % i for i in range(len(toks), 352)]
    types += [5] * (352 - len(types))
    kv = [("tokenizer.ggml.model", 8, b"gpt2"), ("tokenizer.ggml.pre", 8, b"qwen2"),
          ("tokenizer.ggml.tokens", 9, (8, toks))]
    if token_types:
        kv.append(("tokenizer.ggml.token_type", 9, (5, types)))
    kv.append(("tokenizer.ggml.merges", 9, (8, [(a + " " + b).encode() for a, b in MERGES])))
    return kv


def fixture_kv(name, arch, dims):
    """The fixture GGUF's metadata, its tokenizer swapped for the micro one and
    its sizes for `dims`."""
    kv = []
    for k, t, v in rd_gguf(os.path.join(FIX, "models", name)):
        if k in ("tokenizer.ggml.tokens", "tokenizer.ggml.token_type", "tokenizer.ggml.merges"):
            continue
        if k.startswith(arch + ".") and k[len(arch) + 1:] in dims:
            v = dims[k[len(arch) + 1:]]
        if k == "tokenizer.ggml.bos_token_id" or k == "tokenizer.ggml.padding_token_id":
            v = ID_OF["<|endoftext|>"]
        if k == "tokenizer.ggml.eos_token_id":
            v = ID_OF["<|im_end|>"]
        kv.append((k, t, v))
        if k == "tokenizer.ggml.pre":
            kv += micro_tok_kv()[2:]
    return kv


def kmix_model():
    """qwen2, hidden 32, ffn 256, 5 layers: layer l's ffn_down (32 rows of 256) in
    the l-th K-quant type, the other matrices cycling through the 32-block and
    16-bit types."""
    E, F, H, KV, D = 32, 256, 2, 1, 16
    dims = {"embedding_length": E, "feed_forward_length": F, "block_count": 5, "attention.head_count": H,
            "attention.head_count_kv": KV, "attention.key_length": D, "attention.value_length": D}
    kv = fixture_kv("kq-qwen2.mixed.gguf", "qwen2", dims)
    small = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "f16", "bf16", "f32"]
    ts = [tensor("token_embd.weight", 352, E, "q8_0"), tensor("output_norm.weight", 0, E, "f32"),
          tensor("output.weight", 352, E, "q4_0")]
    k = 0
    for l, kt in enumerate(["q2_K", "q3_K", "q4_K", "q5_K", "q6_K"]):
        def nxt():
            nonlocal k
            k += 1
            return small[k % len(small)]
        p = "blk.%d." % l
        ts += [tensor(p + "attn_norm.weight", 0, E, "f32"), tensor(p + "ffn_norm.weight", 0, E, "f32"),
               tensor(p + "attn_q.weight", H * D, E, nxt()), tensor(p + "attn_k.weight", KV * D, E, nxt()),
               tensor(p + "attn_v.weight", KV * D, E, nxt()), tensor(p + "attn_q.bias", 0, H * D, "f32"),
               tensor(p + "attn_k.bias", 0, KV * D, "f32"), tensor(p + "attn_v.bias", 0, KV * D, "f32"),
               tensor(p + "attn_output.weight", E, H * D, nxt()), tensor(p + "ffn_gate.weight", F, E, nxt()),
               tensor(p + "ffn_up.weight", F, E, "q4_0"), tensor(p + "ffn_down.weight", E, F, kt)]
    return kv, ts


def st_file(tensors, meta=None, pad_to=8):
    """A safetensors file: tensors [(name, dtype, shape, bytes)]."""
    hdr = {}
    if meta is not None:
        hdr["__metadata__"] = meta
    off = 0
    for name, dt, shape, data in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = jdump(hdr).encode()
    if pad_to:
        h += b" " * (-len(h) % pad_to)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


MICRO = {
    # name: (architecture, hidden, ffn, layers, heads, kv heads, head_dim, tied, qkv bias)
    "micro-qwen2": ("Qwen2ForCausalLM", 32, 64, 1, 2, 1, 16, False, True),
    "micro-qwen3": ("Qwen3ForCausalLM", 32, 64, 1, 2, 1, 32, True, False),
}


def micro_folder(name, where):
    arch, E, F, L, H, KV, D, tied, bias = MICRO[name]
    d = os.path.join(where, name)
    os.makedirs(d, exist_ok=True)
    V = 352
    cfg = {"architectures": [arch], "hidden_size": E, "intermediate_size": F, "num_hidden_layers": L,
           "num_attention_heads": H, "num_key_value_heads": KV, "vocab_size": V,
           "max_position_embeddings": 4096, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
           "tie_word_embeddings": tied, "bos_token_id": ID_OF["<|endoftext|>"],
           "eos_token_id": ID_OF["<|im_end|>"], "hidden_act": "silu", "torch_dtype": "bfloat16"}
    if arch.startswith("Qwen3"):
        cfg.update(head_dim=D, attention_bias=False)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20,
               "eos_token_id": [ID_OF["<|im_end|>"], ID_OF["<|endoftext|>"]]},
              open(os.path.join(d, "generation_config.json"), "w"), indent=2)
    json.dump(micro_tokenizer(), open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"),
              ensure_ascii=False)
    shutil.copy(os.path.join(FIX, "tokenizer", "tokenizer_config.json"), d)
    ts = []

    def add(n, rows, cols):
        shape = [cols] if rows == 0 else [rows, cols]
        ts.append((n, "BF16", shape, weight_bytes(2 * max(rows, 1) * cols)))
    add("model.embed_tokens.weight", V, E)
    add("model.norm.weight", 0, E)
    if not tied:
        add("lm_head.weight", V, E)
    for l in range(L):
        p = "model.layers.%d." % l
        add(p + "input_layernorm.weight", 0, E)
        add(p + "post_attention_layernorm.weight", 0, E)
        add(p + "self_attn.q_proj.weight", H * D, E)
        add(p + "self_attn.k_proj.weight", KV * D, E)
        add(p + "self_attn.v_proj.weight", KV * D, E)
        add(p + "self_attn.o_proj.weight", E, H * D)
        if bias:
            add(p + "self_attn.q_proj.bias", 0, H * D)
            add(p + "self_attn.k_proj.bias", 0, KV * D)
            add(p + "self_attn.v_proj.bias", 0, KV * D)
        if arch.startswith("Qwen3"):
            add(p + "self_attn.q_norm.weight", 0, D)
            add(p + "self_attn.k_norm.weight", 0, D)
        add(p + "mlp.gate_proj.weight", F, E)
        add(p + "mlp.up_proj.weight", F, E)
        add(p + "mlp.down_proj.weight", E, F)
    ts.sort()
    data = st_file(ts, meta={"format": "pt"})
    open(os.path.join(d, "model.safetensors"), "wb").write(data)
    return d, data


def gguf_seeds(work):
    T = "fuzz_gguf"
    for name in MICRO:
        d, _ = micro_folder(name, work)
        for ty in ["f32", "f16", "bf16", "q8_0", "q4_0"]:
            out = os.path.join(work, "%s.%s.gguf" % (name, ty))
            subprocess.run([QCARE, "convert", d, out, "--type", ty, "--force"], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            put(T, "%s.%s.gguf" % (name, ty), open(out, "rb").read())
    kv, ts = kmix_model()
    put(T, "micro-kmix.gguf", wr_gguf(kv, ts))
    put(T, "micro-kmix-align64.gguf", wr_gguf(kv + [("general.alignment", 4, 64)], ts, align=64))
    dims = {"embedding_length": 32, "feed_forward_length": 64, "block_count": 1, "attention.head_count": 2,
            "attention.head_count_kv": 1, "attention.key_length": 32, "attention.value_length": 32}
    kv = fixture_kv("tiny-qwen3.q8_0.gguf", "qwen3", dims)
    put(T, "tiny-qwen3-metadata.gguf", wr_gguf(kv, []))
    put(T, "tiny-qwen3-metadata-v2.gguf", wr_gguf(kv, [], version=2))
    put(T, "tokenizer-only-notypes.gguf", wr_gguf(micro_tok_kv(token_types=False), []))
    put(T, "empty.gguf", wr_gguf([], []))
    # nested arrays and every scalar type
    kv = [("a.u8", 0, 1), ("a.i8", 1, -1), ("a.u16", 2, 2), ("a.i16", 3, -2), ("a.u32", 4, 3), ("a.i32", 5, -3),
          ("a.f32", 6, 0.5), ("a.bool", 7, True), ("a.str", 8, b"s"), ("a.u64", 10, 2 ** 63),
          ("a.i64", 11, -4), ("a.f64", 12, 0.25),
          ("a.nested", 9, (9, [(4, [1, 2]), (8, [b"x", b"yz"])])), ("general.alignment", 4, 16)]
    put(T, "types.gguf", wr_gguf(kv, [tensor("t", 0, 32, "q8_0"), tensor("u", 2, 256, "q6_K")], align=16))


def safetensors_seeds(work):
    T = "fuzz_safetensors"
    for name in MICRO:
        _, data = micro_folder(name, work)
        put(T, name + ".safetensors", b"\0" + data)
    put(T, "dtypes.safetensors", b"\0" + st_file([
        ("a", "F32", [2, 2], weight_bytes(16)), ("b", "F16", [3], weight_bytes(6)),
        ("c", "BF16", [1, 1, 1, 2], weight_bytes(4)), ("scalar", "F32", [], weight_bytes(4)),
        ("empty", "F16", [0, 4], b"")], meta={"format": "pt", "note": "x"}))
    put(T, "misaligned.safetensors", b"\0" + st_file([("m", "F32", [3], weight_bytes(12)),
                                                      ("n", "F16", [1], weight_bytes(2))], pad_to=0))
    put(T, "unsupported.safetensors", b"\0" + st_file([("q", "I8", [4], b"\1\2\3\4")]))
    idx = {"metadata": {"total_size": 40}, "weight_map": {"a.weight": "shard-a.safetensors",
                                                         "b": "shard-a.safetensors", "c": "shard-b.safetensors"}}
    put(T, "index.json", b"\1" + jdump(idx).encode())
    idx["weight_map"]["z"] = "fuzz.safetensors"
    put(T, "index-fuzzshard.json", b"\1" + jdump(idx).encode() + b"\0" +
        st_file([("z", "BF16", [2, 2], weight_bytes(8))]))
    put(T, "index-missing.json", b"\1" + jdump({"weight_map": {"x": "model-00002-of-00002.safetensors"}}).encode())


def mkmodel_configs(work):
    """config.json + generation_config.json as `qcare mkmodel` writes them for
    every preset (the big presets are stopped once their configs exist)."""
    out = []
    presets = ["tiny-qwen2", "tiny-qwen3", "bench-qwen1.5-0.5b", "qwen2.5-0.5b", "qwen3-0.6b"]
    for p in presets:
        d = os.path.join(work, "mk-" + p)
        shutil.rmtree(d, ignore_errors=True)
        proc = subprocess.Popen([QCARE, "mkmodel", "--preset", p, "--out", d, "--tokenizer",
                                 os.path.join(FIX, "tokenizer")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for _ in range(600):
            if os.path.exists(os.path.join(d, "generation_config.json")) or proc.poll() is not None:
                break
            time.sleep(0.05)
        time.sleep(0.1)
        proc.kill()
        proc.wait()
        out.append((p, open(os.path.join(d, "config.json")).read(),
                    open(os.path.join(d, "generation_config.json")).read()))
        shutil.rmtree(d, ignore_errors=True)
    return out


def config_seeds(work):
    T = "fuzz_config"
    for p, cfg, gen in mkmodel_configs(work):
        put(T, p + ".config.json", cfg)
        put(T, p + ".generation_config.json", gen)
    base = json.loads(open(os.path.join(OUT, T, "qwen2.5-0.5b.config.json")).read())
    put(T, "rope-default.config.json", jdump(dict(base, rope_scaling={"rope_type": "default"}, eos_token_id=[1, 2])))
    put(T, "yarn.config.json", jdump(dict(base, rope_scaling={"type": "yarn", "factor": 4.0})))
    put(T, "nulls.config.json", jdump(dict(base, head_dim=None, bos_token_id=None, num_key_value_heads=None)))
    put(T, "greedy.generation_config.json", jdump({"do_sample": False, "temperature": 1e-6, "top_k": 0,
                                                   "top_p": 1, "min_p": 0.05, "repetition_penalty": 1.1,
                                                   "eos_token_id": 151645}))


def tokenize_seeds():
    T = "fuzz_tokenize"
    lines = [json.loads(l) for l in open(os.path.join(FIX, "golden", "tokenizer.jsonl"), encoding="utf-8")]
    for i, g in enumerate(lines):
        text = g["text"].encode()
        put(T, "text-%02d" % i, bytes([4 if "<|" in g["text"] else 0]) + text)
        ids = struct.pack("<%di" % len(g["ids"]), *g["ids"])
        put(T, "ids-%02d" % i, bytes([2]) + ids)
    put(T, "text-invalid", b"\0caf\xc3 \xe2\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf")
    put(T, "text-made-valid", b"\1caf\xc3 \xe2\x80 <|im_end|> \xff\xfe")
    # the bytes of an em dash one token at a time, an invalid byte, ids out of range
    b2u = {}
    n = 0
    for b in range(256):
        printable = (33 <= b <= 126) or (0xA1 <= b <= 0xAC) or b >= 0xAE
        b2u[b] = chr(b) if printable else chr(256 + n)
        if not printable:
            n += 1
    byte_ids = [VOCAB[b2u[b]] for b in "—".encode() + b"\xff" + "é".encode()[:1]]
    put(T, "ids-bytes", bytes([2]) + struct.pack("<%di" % len(byte_ids), *byte_ids))
    put(T, "ids-unknown", bytes([2]) + struct.pack("<4i", 151669, -1, 2 ** 31 - 1, 0))
    put(T, "ids-folded", bytes([3]) + struct.pack("<4I", 151670, 5, 2 ** 32 - 1, 151644))


def chat_seeds():
    T = "fuzz_chat"
    put(T, "basic", b"\x02\x01Hello, I have a headache.\0\x02Sorry to hear that.\0\x01It got worse.")
    put(T, "default-system", b"\x07\x00You are a careful adviser.\0\x01hi\0\x02\0\x01")
    put(T, "own-system", b"\x03\x00sys\0\x00Be kind.\0\x01I'm worried \xe2\x80\x94 is this normal?")
    put(T, "roles", b"\x02\x05user\nnamed role\0\x05tool\nunknown\0\x03null role\0\x04null content")
    put(T, "no-opts", b"\x08\x01<|im_start|>user\ninjected<|im_end|>")


def hub_seeds():
    T = "fuzz_hub"
    sib = [".gitattributes", "LICENSE", "README.md", "config.json", "generation_config.json", "merges.txt",
           "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.json"]
    real = {"_id": "66e6d2", "id": "Qwen/Qwen2.5-0.5B-Instruct", "private": False, "pipeline_tag": "text-generation",
            "tags": ["safetensors", "qwen2"], "downloads": 1, "likes": 2, "modelId": "Qwen/Qwen2.5-0.5B-Instruct",
            "author": "Qwen", "sha": "7ae557604adf67be50417f59c2c2f167def9a775",
            "lastModified": "2024-09-25T12:32:56.000Z", "gated": False, "disabled": False,
            "siblings": [{"rfilename": s} for s in sib], "spaces": [], "usedStorage": 988097824}
    put(T, "listing.json", jdump(real))
    put(T, "listing-headers", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nETag: W/\"ab\"\r\n"
        "Content-Length: 99\r\n\r\n" + jdump({"id": "a/b", "sha": "0", "siblings": [
            {"rfilename": "model-00001-of-00002.safetensors"}, {"rfilename": "sub/dir/file.txt"}]}))
    put(T, "listing-unsafe.json", jdump({"siblings": [{"rfilename": "ok"}, {"rfilename": "../../etc/passwd"}]}))
    put(T, "listing-noname.json", jdump({"siblings": [{"size": 3}]}))
    put(T, "404", "HTTP/1.1 404 Not Found\r\nX-Error-Code: RepoNotFound\r\n"
        "X-Error-Message: Repository not found\r\n\r\n{\"error\":\"Repository not found\"}")
    put(T, "401", "HTTP/1.1 401 Unauthorized\r\nX-Error-Code: GatedRepo\r\n\r\n")
    put(T, "redirect-chain", "HTTP/1.1 302 Found\r\nLocation: https://cdn/x\r\nX-Linked-Etag: \"abc\"\r\n"
        "X-Linked-Size: 12\r\nHTTP/2 200\r\nContent-Range: bytes 0-11/12\r\n\r\n{\"siblings\":[]}")


def api_seeds():
    """fuzz_api: byte 0 the endpoint (0 emotion, 1 analyze, 2 chat
    completions, 3 completions, 4 classify), then a body as the README's
    examples and test_server send them; fuzz_sse: byte 0 the kind and
    flags, stop strings up to a NUL, pieces split by 0xFF."""
    bodies = [
        (0, {"text": "I feel so sad and alone today"}),
        (0, {"text": "我爸胸口剧烈疼痛，还出冷汗"}),
        (1, {"text": "医生，我最近总是失眠", "max_tokens": 8}),
        (1, {"text": "still there?", "session": "s-1", "stream": True, "max_tokens": 4}),
        (2, {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
             "max_tokens": 6, "temperature": 1.0, "top_p": 0.9, "seed": 7, "stop": ["\n\n"]}),
        (2, {"messages": [{"role": "developer", "content": [{"type": "text", "text": "a"}]},
                          {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}]}],
             "stream": True, "logprobs": True, "top_logprobs": 3, "top_k": 40, "n": 1, "tools": []}),
        (3, {"prompt": "Hello <|im_end|>", "max_tokens": 0, "echo": True, "logprobs": 5}),
        (3, {"prompt": [9707, 1879], "max_tokens": 4, "stream": True, "stop": "a", "best_of": 1, "suffix": None}),
        (3, {"prompt": ["one"], "seed": 18446744073709551615}),
        (4, {"text": "I was charged twice", "labels": ["billing question", "appointment", "其他"],
             "instruction": "Sort the message.", "examples": [{"text": "Can I come on Friday?", "label": "appointment"}],
             "calibrate": True, "normalize": "mean"}),
    ]
    for i, (ep, b) in enumerate(bodies):
        put("fuzz_api", "body%02d" % i, bytes([ep]) + jdump(b).encode())
    put("fuzz_api", "duplicate", b"\x00" + b'{"text":"hi","text":"chest pain"}')
    put("fuzz_sse", "chat", b"\x00\x00Hello\xff world\xff!")
    put("fuzz_sse", "chat-logprobs-stop", b"\x34\n\n\x01END\x00Hi\xff\n\xff\nthere\xffEN\xffD")
    put("fuzz_sse", "legacy-echo", b"\x1d\x00 \xe4\xbd\xa0\xe5\xa5\xbd\xff\xf0\x9f\x98\x80")
    put("fuzz_sse", "analyze", b"\x02\x00I \xffunderstand\xff.")


def records_seeds():
    """fuzz_records: byte 0 the request (0 sessions, 1 a patient's, 2 a
    session, 3 DELETE a session, 4 export), then the URL after the prefix,
    as the README's examples and test_recserve send them."""
    T = "fuzz_records"
    urls = [
        (0, ""), (0, "?order=risk"), (0, "?order=recent"), (0, "?limit=5"), (0, "?limit=0"), (0, "?limit=abc"),
        (0, "?min_streak=2"), (0, "?order=worst"), (0, "?since=yesterday"), (0, "?cursor=garbage"),
        (0, "?order=risk&cursor=t.1.00"), (0, "?order=risk&urgent=1&since=2026-11-01&limit=20"),
        (0, "?patient=pat-w"), (0, "?order=recent&patient=p7&min_streak=2&limit=1"),
        (0, "?limit=2&cursor=r.900000.1790000120000.7331"), (0, "?order=recent&limit=1&cursor=t.1790000120000.7331"),
        (0, "?since=2026-09-21T00:00Z&until=2026-09-23T12:30:15.250"), (0, "?since=2026-09-21+08:00:00"),
        (0, "?patient=p%208&order=recent"),
        (1, "p7"), (1, "pat-w?limit=1"), (1, "no-such"), (1, "p7?order=risk&since=2026-09-22"),
        (2, "s1"), (2, "s4"), (2, "no-such"), (2, "sess%20%C3%A9%2F%25%3F%26%3D%2B"), (2, ""),
        (3, "s2"), (3, "e-1"), (3, "sess%20%C3%A9%2F%25%3F%26%3D%2B"),
        (4, ""), (4, "?format=csv"), (4, "?format=jsonl"), (4, "?format=xml"), (4, "?since=2026-1-1"),
        (4, "?format=csv&since=2026-11-01&until=2026-12-01"), (4, "?format=jsonl&since=2100-01-01"),
        (4, "?format=jsonl&until=2026-09-22T00:00:00Z"),
    ]
    for i, (route, url) in enumerate(urls):
        put(T, "url%02d" % i, bytes([route]) + url.encode())


def rules_seeds():
    """fuzz_rules: data/safety-rules.txt whole and cut down (its header, the
    sources and presentations a block of rules needs, one block of each
    statement kind), and test_safety's small files."""
    T = "fuzz_rules"
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "data", "safety-rules.txt"), encoding="utf-8") as f:
        full = f.read()
    put(T, "safety-rules.txt", full)
    # statements: a line in the first column and its indented lines
    stmts, cur = [], []
    for line in full.split("\n"):
        if line and not line[0].isspace() and not line.startswith("#"):
            if cur:
                stmts.append(cur)
            cur = [line]
        elif cur and line.strip() and not line.startswith("#"):
            cur.append(line)
    if cur:
        stmts.append(cur)
    head = stmts[0]
    by = {}
    for st in stmts[1:]:
        by.setdefault(st[0].split()[0], []).append(st)
    text = lambda sts: "\n".join("\n".join(st) for st in sts) + "\n"
    # each rule with what it names: its presentation, that one's sources, its groups (and theirs, via @)
    groups = {st[0].split()[1]: st for st in by.get("group", [])}
    pres = {st[0].split()[1]: st for st in by.get("presentation", [])}
    srcs = {st[0].split()[1]: st for st in by.get("source", [])}

    def needs_groups(st, seen):
        out = []
        for line in st[1:]:
            words = line.replace("|", " ").split()
            names = [w[1:] for w in words if w.startswith("@")]
            if st[0].startswith("rule"):
                names = [w for w in words[1:] if w != "with" and w in groups] if words[0] in (
                    "trigger", "cosign", "unless") else []
            for n in names:
                if n in groups and n not in seen:
                    seen.add(n)
                    out += needs_groups(groups[n], seen) + [groups[n]]
        return out

    rules = by.get("rule", [])
    for k, idx in enumerate([0, 1, len(rules) // 2, len(rules) - 1]):
        if not rules:
            break
        r = rules[idx]
        p = pres.get(r[0].split()[1])
        need = []
        if p:
            for line in p[1:]:
                w = line.split()
                if w and w[0] == "source":
                    need += [srcs[x] for x in w[1:] if x in srcs]
            need.append(p)
        need += needs_groups(r, set())
        cues = by.get("cue", [])[:2] + by.get("compound", [])[:1] + by.get("fold", [])[:1]
        put(T, "rule-%d.txt" % k, text([head] + need + cues + [r]))
    put(T, "use-builtin.txt", "qcare-safety-rules 1\nuse builtin\nsource clinic\n    Our protocol.\n"
        "presentation clinic.purple\n    kind emergency\n    source clinic\n    title Zebra stripes\n"
        "group purple\n    zebra stripe* | \u6591\u9a6c\u7eb9\nrule clinic.purple\n    trigger purple\n")
    put(T, "small.txt", "qcare-safety-rules 1\n# a clinic's own rule\nsource clinic\n    Our clinic's protocol, 2026.\n"
        "presentation clinic.purple\n    kind emergency\n    source clinic\n    title Zebra stripes with fever\n"
        "group purple\n    zebra stripe* | \u6591\u9a6c\u7eb9\ngroup fever\n    fever | \u53d1\u70e7 | {n>=39} degrees\n"
        "group pills\n    took {n>=10}~pills | sats {n<=92} | @fever\ncue negation\n    no\ncue past\n    used to\n"
        "compound\n    blood + test\nfold\n    \u767c=\u53d1\nfold dialect\n    \u5187=\u6ca1\n"
        "rule clinic.purple\n    trigger purple with fever\n    cosign pills\n    unless fever\n    lang any\n"
        "    context negation past figurative\n    kind child\n    child\n")
    put(T, "bad-version.txt", "qcare-safety-rules 2\n")
    put(T, "bad-phrase.txt", "qcare-safety-rules 1\ngroup g\n    a~b~c~d~e | al*ergy | {n<3} pills\n")
    put(T, "crlf.txt", "qcare-safety-rules 1\r\nsource s\r\n    T.\r\npresentation p\r\n    kind cardiac\r\n"
        "    source s\r\ngroup g\r\n    a\r\nrule p\r\n    trigger g\r\n")


def main():
    work = os.path.join(OUT, "work")
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(work)
    tokenizer_seeds()
    gguf_seeds(work)
    safetensors_seeds(work)
    config_seeds(work)
    tokenize_seeds()
    chat_seeds()
    hub_seeds()
    api_seeds()
    records_seeds()
    rules_seeds()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
