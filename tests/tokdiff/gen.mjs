// gen.mjs — reference ids for the differential tokenizer test.
//
// Tokenizes many generated strings with @lenml/tokenizers (an independent
// port of the Hugging Face tokenizers, pinned in package.json) and writes one
// JSON object a line, {"text": ..., "ids": [...], "decoded": ...}, which
// tests/test_tokenizer.c compares against qcare's own encode/decode, then
// {"ids": [...], "decoded": ...} lines for random id sequences (decode only).
//
//   cd tests/tokdiff && npm install && node gen.mjs [out.jsonl]
//
// Default output: ../data/tokdiff.jsonl (tests/data/tokdiff.jsonl). Fixtures
// come from $QC_FIXTURES or ../../../shared/fixtures. The strings come from a
// seeded generator, so a rerun writes the same file.
//
// Left out on purpose: U+0085 (NEL) and U+FEFF (BOM). There this reference,
// which runs the pre-tokenizer regex as a JavaScript regex, differs from
// Hugging Face's Rust tokenizers (Oniguruma), whose \s is Unicode White_Space:
// JavaScript's \s lacks U+0085 and has U+FEFF. qcare follows the Rust
// behaviour (White_Space), so such strings would be false alarms. U+180E,
// U+017F and U+212A (where PCRE2 alone could differ) are kept in.
//
// Code points assigned in recent Unicode versions are kept out where
// practical (PCRE2 10.42 knows Unicode 14, utf8proc 2.6 Unicode 13, Node's ICU
// is newer): random supplementary-plane picks come from old blocks only.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TokenizerLoader } from "@lenml/tokenizers";

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = process.env.QC_FIXTURES
  ? path.resolve(process.env.QC_FIXTURES)
  : path.resolve(here, "../../../shared/fixtures");
const out = process.argv[2] ?? path.resolve(here, "../data/tokdiff.jsonl");

const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(fixtures, "tokenizer/tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(fixtures, "tokenizer/tokenizer_config.json"), "utf8"));
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });

// ---- deterministic generator (xorshift32) ----
let seed = 0x9e3779b9;
function rnd() {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const cp = (lo, hi) => String.fromCodePoint(int(lo, hi));

const EXCLUDED = new Set([0x85, 0xfeff]);
function cpOk(c) {
  if (c >= 0xd800 && c <= 0xdfff) return false;
  if (EXCLUDED.has(c)) return false;
  // unassigned in older Unicode: only keep assigned code points
  return /\P{Cn}/u.test(String.fromCodePoint(c));
}
function anyCp(lo, hi) {
  for (;;) {
    const c = int(lo, hi);
    if (cpOk(c)) return String.fromCodePoint(c);
  }
}

// ---- character classes ----
const SPACES = [" ", " ", " ", "\t", "\n", "\n", "\r", "\r\n", "\u180e", "\u00a0", "\u2003", "\u3000", "\u200b", "\u2028", "\u000b", "\u000c", "\u1680", "\u202f"];
const PUNCT = [..."!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "。", "，", "、", "！", "？", "：", "；", "……", "——", "「", "」", "《", "》", "【", "】", "·", "•", "€", "£", "¥", "©", "®", "°", "±", "×", "÷", "→", "∑", "√", "∞", "≤", "♥", "★", "✓"];
const CONTRACTIONS = ["'s", "'\u017f", "'\u212a", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'lL", "'D", "'x", "''", "'"];
const WORDS = ["the", "The", "patient", "doctor", "fever", "don't", "I'm", "WE'LL", "it's", "hello", "naïve", "café", "Straße", "İstanbul", "ǅ", "ﬁ", "Ωmega"];
const ADDED = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>", "<|im_start |>", "<|im_end", "<|", "|>"];

// supplementary blocks assigned long ago (newer ones, e.g. Unicode 16's
// Egyptian Hieroglyphs Extended-A, are letters to Node's ICU but unassigned to
// PCRE2 10.42)
const SMP_BLOCKS = [[0x10000, 0x1005d], [0x10330, 0x1034a], [0x10400, 0x1044f], [0x12000, 0x12399],
  [0x13000, 0x1342e], [0x1d100, 0x1d126], [0x1f600, 0x1f64f], [0x1f0a1, 0x1f0ae], [0x1d7ce, 0x1d7ff]]
  .map(([lo, hi]) => () => anyCp(lo, hi));

const CLASSES = [
  () => String.fromCharCode(int(97, 122)),
  () => String.fromCharCode(int(65, 90)),
  () => String.fromCharCode(int(48, 57)),
  () => pick(SPACES),
  () => pick(PUNCT),
  () => pick(CONTRACTIONS),
  () => pick(WORDS),
  () => cp(0x4e00, 0x9fa5), // CJK
  () => cp(0x3041, 0x3096), // hiragana
  () => cp(0x30a1, 0x30fa), // katakana
  () => cp(0xac00, 0xd7a3), // hangul
  () => cp(0x0621, 0x064a), // arabic
  () => cp(0x0660, 0x0669), // arabic-indic digits
  () => cp(0x0410, 0x044f), // cyrillic
  () => cp(0x0391, 0x03c9).replace(/\u03a2/, "Σ"), // greek
  () => cp(0x0905, 0x0939) + (rnd() < 0.5 ? cp(0x093e, 0x094c) : ""), // devanagari
  () => cp(0x0e01, 0x0e2e), // thai
  () => cp(0x0300, 0x036f), // a lone combining mark
  () => pick(["e", "a", "o", "n", "u", "A", "E"]) + cp(0x0300, 0x0308), // NFC composes
  () => pick(["e\u0301\u0323", "\u1e9b\u0323", "\u212b", "\u2126", "\uac00\u11a8", "\u1100\u1161", "\u0958", "\u2000", "\uf900"]),
  () => anyCp(0x1f300, 0x1f6ff), // emoji
  () => anyCp(0x1f900, 0x1f9ff),
  () => pick(["👨\u200d👩\u200d👧", "🏳️\u200d🌈", "❤️", "👍🏽", "🇨🇳", "1️⃣", "\u200d", "\ufe0f"]),
  () => anyCp(0xff01, 0xff5e), // fullwidth
  () => pick(["½", "²", "Ⅻ", "①", "௰", "𝟘", "٣", "〇", "〡"]), // other numbers
  () => anyCp(0x20000, 0x2a6d6), // CJK ext B
  () => anyCp(0x1d400, 0x1d7ff), // math alphanumerics
  () => anyCp(0xa0, 0x2fff),
  () => anyCp(0x3000, 0xfffd),
  () => pick(SMP_BLOCKS)(),
  () => anyCp(0xe000, 0xe0ff), // private use
  () => pick(ADDED),
  () => "\u0000",
];

function mix(maxParts) {
  let s = "";
  const n = int(1, maxParts);
  for (let i = 0; i < n; i++) {
    const f = pick(CLASSES);
    const rep = rnd() < 0.25 ? int(2, 6) : 1;
    for (let k = 0; k < rep; k++) s += f();
  }
  return s;
}

const cases = [];
const add = (s) => cases.push(s);

// 1. every string of length <= 4 over a small alphabet of class boundaries
const ALPHA = [" ", "\n", "\t", "\r", "a", "1", ".", "'", "中"];
function all(prefix, depth) {
  if (prefix.length) add(prefix);
  if (depth === 0) return;
  for (const c of ALPHA) all(prefix + c, depth - 1);
}
all("", 4);

// 2. contractions in context
for (const c of CONTRACTIONS) {
  for (const ctx of ["x", "X ", " ", "1", "中", "'", "\n", ""]) {
    add(ctx + c);
    add(ctx + c + "x");
    add(ctx + c + " y");
  }
}

// 3. numbers and digit edge cases
for (const s of ["0", "00", "12345678901234567890", "3.14159", "1,000,000", "-42", "+1e-9", "v1.2.3",
  "192.168.0.1", "٣٤٥٦", "１２３", "½¼", "x²+y²", "Ⅷ", "2026年6月", "1st 2nd 3rd", "0x1F", "1_000"]) {
  add(s); add(" " + s); add(s + " "); add("a" + s + "b");
}

// 4. whitespace runs
for (const w of [" ", "\t", "\n", "\r\n", " \n", "\n ", "\u00a0", "\u3000", " \t"]) {
  for (const n of [1, 2, 3, 5, 8, 17, 64]) {
    const r = w.repeat(n);
    add(r); add(r + "x"); add("x" + r); add("x" + r + "y"); add(r + "!"); add("!" + r + "\n");
  }
}

// 5. random mixes
for (let i = 0; i < 3000; i++) add(mix(12));
for (let i = 0; i < 300; i++) add(mix(80));

// 6. long runs of one class, and long mixes
for (const [unit, n] of [["a", 5000], [" ", 5000], ["7", 3000], ["\n", 3000], ["中", 3000],
  ["😊", 1000], ["!?", 2000], ["e\u0301", 1500], ["ab ", 1500], ["\r\n", 2000], ["'s", 1500]]) {
  add(unit.repeat(n));
}
for (let i = 0; i < 5; i++) add(mix(1500));

// ---- tokenize and write ----
const lines = [];
for (const text of cases) {
  const ids = tok.encode(text, { add_special_tokens: false });
  const decoded = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  lines.push(JSON.stringify({ text, ids, decoded }));
}
// decode-only lines: random id sequences, many of them single bytes that
// split characters, for the lossy UTF-8 replacement (no "text" member)
const byteIds = [];
for (let id = 0; id < 256 * 4; id++) {
  const t = tok.model.vocab[id];
  if (t !== undefined && [...t].length === 1) byteIds.push(id);
}
const nVocab = tok.model.vocab.length;
for (let i = 0; i < 1000; i++) {
  const ids = [];
  const n = int(1, 16);
  for (let k = 0; k < n; k++) ids.push(rnd() < 0.6 ? pick(byteIds) : int(0, nVocab - 1));
  const decoded = tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  lines.push(JSON.stringify({ ids, decoded }));
}
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, lines.join("\n") + "\n");
console.log(`${cases.length} strings + 1000 id sequences -> ${out}`);
