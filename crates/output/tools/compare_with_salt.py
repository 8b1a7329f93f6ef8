"""Differential test: this crate's outputters against Salt's own.

Feeds the same random and hand-picked data to Salt's `salt.output.try_printout`
and to `examples/render_cases.rs`, and reports every difference.

    python3 -m venv /tmp/saltvenv && /tmp/saltvenv/bin/pip install salt==3008.4
    cargo build -p salt-output --example render_cases
    /tmp/saltvenv/bin/python crates/output/tools/compare_with_salt.py SEED COUNT [path/to/render_cases]
"""
import sys, json, random, subprocess, logging
logging.disable(logging.CRITICAL)
import salt.config, salt.output

BASE = salt.config.minion_config(None)

def salt_fmt(case):
    o = dict(BASE)
    o["color"] = case.get("color", False)
    if "indent" in case:
        o["output_indent"] = case["indent"]
    o.pop("output", None)
    r = salt.output.try_printout(case["data"], case["out"], o, _retcode=case.get("retcode", 0))
    return "" if r is None else r

WORDS = ["a", "b", "minion1", "true", "123", "1.5", "null", "", " ", "x y", "héllo", "😀", "a\nb", "a\n\nb\n",
         "trail ", " lead", "-", "- x", ":", "a: b", "#c", "a #c", "it's", "say \"hi\"", "tab\there", "\x1b[31m",
         "~", "2024-01-01", "0o17", "0x1F", "1_000", "yes", "No", "on", "*", "&a", "!t", "%", "@", "`", "?", "? x",
         "[x]", "{y}", "a,b", "---", "...", "\u2028", "\x85", "\xa0", "back\\slash", "\r\n", "a \nb", "\n lead",
         "long " * 30, "x" * 100, "word " * 25 + "end", "ééé " * 40, "k" * 129, "0", "-1", "+1", ".5", "1e3", "1.0e+3",
         "=", "<<", "NaN", ".nan", ".inf", "Yes", "y", "n", "1:20", "12:30:45", "ab:cd:ef", "multi\nline with trailing \nspace",
         "it's " * 30, "tab\t" + "word " * 30, "a\n" + "word " * 30 + "\nend", "😀 x " * 30, "a  b " * 30, "x  " * 40 + "y",
         "q\"uote " * 25, "long-line-" * 12 + " " + "more " * 20, "line1\nline2 " + "w " * 60, "  " + "z " * 50,
         "bin\nboot\ndev\netc\nhome\nlib\nlib64\nlost+found\nmedia\nmnt\nopt\nproc\nroot\nrun\nsbin\nsrv",
         "ab " * 40 + "\n" + "cd " * 40, "é" * 70 + " " + "é" * 20]

def rand_scalar(r):
    k = r.random()
    if k < 0.55: return r.choice(WORDS)
    if k < 0.65: return r.choice([True, False, None])
    if k < 0.8: return r.choice([0, 1, -3, 16476, 2**40, 2**63 + 5])
    return r.choice([1.0, 0.5, -2.25, 1e16, 1e-5, 3.14159, 1e100, 123456789.123, 0.1])

def rand_value(r, depth=0):
    k = r.random()
    if depth > 3 or k < 0.5: return rand_scalar(r)
    if k < 0.75:
        return [rand_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    d = {}
    for _ in range(r.randint(0, 5)):
        key = r.choice(WORDS + ["pid", "fun", "arg", "jid", "Z", "a1", "a10", "a2", "__pub_x"])
        d[key] = rand_value(r, depth + 1)
    return d

def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    r = random.Random(seed)
    cases = []
    outs = ["nested", "json", "yaml", "raw", "txt", "pprint", "no_return", "key"]
    for i in range(n):
        data = {"minion%d" % r.randint(1, 3): rand_value(r)} if r.random() < 0.8 else rand_value(r)
        for out in outs:
            if out == "key":
                continue
            c = {"out": out, "data": data}
            x = r.random()
            if x < 0.15: c["indent"] = r.choice([-1, 0, 2, 4, 8, "pretty", None])
            if r.random() < 0.2: c["color"] = True
            if r.random() < 0.2: c["retcode"] = r.choice([1, 2])
            cases.append(c)
    keyd = {"minions": ["m2", "m1", "m10"], "minions_pre": [], "minions_denied": ["d"], "minions_rejected": []}
    cases.append({"out": "key", "data": keyd})
    cases.append({"out": "key", "data": keyd, "color": True})
    cases.append({"out": "key", "data": {"minions": {"m1": "aa:bb"}}})
    cases.append({"out": "key", "data": {"return": {"m1": True}}})
    # Normalise through JSON so both sides see identical data.
    cases = json.loads(json.dumps(cases))
    expected = [salt_fmt(c) for c in cases]
    render = sys.argv[3] if len(sys.argv) > 3 else "target/debug/examples/render_cases"
    p = subprocess.run([render], input=json.dumps(cases), capture_output=True, text=True)
    if p.returncode:
        print(p.stderr); sys.exit(1)
    got = json.loads(p.stdout)
    bad = 0
    for c, e, g in zip(cases, expected, got):
        if e != g:
            bad += 1
            if bad <= 6:
                print("MISMATCH", json.dumps({k: v for k, v in c.items() if k != "data"}))
                print("  data:", json.dumps(c["data"], ensure_ascii=False)[:400])
                print("  salt:", repr(e)[:1500])
                print("  rust:", repr(g)[:1500])
    print(f"{len(cases) - bad} passed, {bad} failed")

main()
