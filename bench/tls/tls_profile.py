"""Where the CPU of the 3-hop stream goes, plaintext and TLS: sampled with `perf record -g`.

One build, the `tls_cpu.py` setup (root + two agents, one `dagent-bench pingpong` stream), once
plaintext and once with mutual TLS. `perf record -g` samples the three relays and the endpoint
process during the stream; every sample is put in one category by its stack:

  aes-gcm     BoringSSL's AES-GCM code (the record encryption and decryption itself)
  tls-copy    memmove called (through libc) from NIOSSL or BoringSSL: the BIO copies in and
              out of BoringSSL's buffers and SSL_read's copy of the plaintext
  tls-other   any other user-space code of NIOSSL and BoringSSL, and the allocator and Swift
              runtime calls made from it (record framing, BIO callbacks, buffer management)
  memmove     the other copies (dagent's framing, batching, carrying frames across reads)
  kernel      the kernel (sockets, wakeups, scheduling, page faults)
  other       the rest (dagent, NIO, Swift runtime, allocator)

and printed as µs of CPU per message (samples / frequency / messages), with TLS's extra over
plaintext. The sum differs a little from `tls_cpu.py` (perf's own cost, sampling).

  bench/tls/tls_profile.py --bin .build/release/dagent [--count 1000000] [--freq 2999]

Needs `perf` (root or perf_event_paranoid <= 1).
"""
import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_bench  # noqa: E402

CATEGORIES = ("aes-gcm", "tls-copy", "tls-other", "memmove", "kernel", "other")
AES = ("aes_gcm_", "aes_hw_", "gcm_gmult", "gcm_ghash", "gcm_init", "CRYPTO_gcm128", "aead_aes_gcm", "gcm_mul")
TLS_CODE = ("NIOSSL", "CNIOBoringSSL", "bssl::", "ssl_read_impl", "check_iovec", "aead_")
RUNTIME_DSOS = ("libc.so", "libswiftCore.so", "libstdc++", "ld-linux")
# How far up the stack a TLS caller makes a sample TLS work: far enough to pass the allocator or
# the Swift runtime and ByteBuffer's own frames (the BIO's copy is memmove <- ByteBuffer._setBytes
# <- ByteBufferBIO.sslWrite), not so far that NIO's socket writes under NIOSSLHandler.flush count.
TLS_DEPTH = 4


def classify(frames):
    """frames: [(symbol, dso)] from the sampled leaf outwards."""
    leaf, dso = frames[0]
    if dso.startswith("[kernel") or dso == "[unknown]" and leaf.startswith("0xffff"):
        return "kernel"
    if any(a in leaf for a in AES):
        return "aes-gcm"
    in_tls = any(t in s for s, _ in frames[:TLS_DEPTH] for t in TLS_CODE)
    if "memmove" in leaf or "memcpy" in leaf:
        return "tls-copy" if in_tls else "memmove"
    return "tls-other" if in_tls else "other"


def samples(data):
    """Per-sample stacks of a perf.data file."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "ip,sym,dso"], capture_output=True, text=True).stdout
    stack = []
    for line in out.splitlines() + [""]:
        line = line.strip()
        if not line:
            if stack:
                yield stack
            stack = []
            continue
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else "?"
        sym = rest[:rest.rfind("(")].strip() if rest.endswith(")") else rest
        stack.append((sym, os.path.basename(dso) if not dso.startswith("[") else dso))


def profile(binary, tls, certs, logdir, count, freq):
    with tls_bench.Tree(binary, logdir, certs=certs if tls else None, tag="-tls" if tls else "") as tree:
        cmd = [binary + "-bench", "pingpong", "--from", tree.a1, "--to", tree.a2, "--size", "1024",
               "--count", str(count), "--rtt-count", "1", *tree.tls("bench"), "--json"]
        bench = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)   # the endpoints join and warm up (1,000 round trips) before the stream
        files = {"relays": os.path.join(logdir, f"relays{tls}.data"), "endpoints": os.path.join(logdir, f"ends{tls}.data")}
        pids = {"relays": ",".join(str(p.pid) for p in tree.procs), "endpoints": str(bench.pid)}
        perf = [subprocess.Popen(["perf", "record", "-q", "-F", str(freq), "-g", "-o", files[k], "-p", pids[k]],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for k in files]
        out, err = bench.communicate()
        for p in perf:
            p.send_signal(signal.SIGINT)
            p.wait()
    if bench.returncode != 0:
        raise SystemExit(f"tls_profile: pingpong failed: {err.strip()[-800:]}")
    result = {}
    for part, data in files.items():
        counts = collections.Counter(classify(s) for s in samples(data))
        result[part] = {c: counts[c] / freq / count * 1e6 for c in CATEGORIES}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="a release dagent (dagent-bench next to it)")
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--freq", type=int, default=2999)
    args = ap.parse_args()
    if shutil.which("perf") is None:
        raise SystemExit("tls_profile: needs perf")
    logdir = tempfile.mkdtemp(prefix="dagent-tls-profile.")
    certs = tls_bench.make_certs(args.bin, logdir)
    res = {tls: profile(args.bin, tls, certs, logdir, args.count, args.freq) for tls in (False, True)}
    shutil.rmtree(logdir, ignore_errors=True)
    print(f"\nCPU per message by category, 1024 B stream of {args.count} messages, perf at {args.freq} Hz (µs)\n")
    print("| category | relays plaintext | relays TLS | endpoints plaintext | endpoints TLS | TLS extra (all) |")
    print("|---|---|---|---|---|---|")
    total = {k: 0.0 for k in ("rp", "rt", "ep", "et")}
    for c in CATEGORIES:
        rp, rt = res[False]["relays"][c], res[True]["relays"][c]
        ep, et = res[False]["endpoints"][c], res[True]["endpoints"][c]
        for k, v in zip(("rp", "rt", "ep", "et"), (rp, rt, ep, et)):
            total[k] += v
        print(f"| {c} | {rp:.3f} | {rt:.3f} | {ep:.3f} | {et:.3f} | {rt + et - rp - ep:+.3f} |")
    t = total
    print(f"| total | {t['rp']:.3f} | {t['rt']:.3f} | {t['ep']:.3f} | {t['et']:.3f} | {t['rt'] + t['et'] - t['rp'] - t['ep']:+.3f} |")


if __name__ == "__main__":
    main()
