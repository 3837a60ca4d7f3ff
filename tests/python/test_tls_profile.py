"""bench/tls/tls_profile.py puts each perf sample in the category its stack belongs to (issue 12).

The TLS cost accounting in docs/performance.md rests on this classification: AES-GCM, the
copies NIOSSL and BoringSSL make, their other code, and the rest. Synthetic stacks shaped like
`perf script -F ip,sym,dso` output, so no perf or build is needed."""
import os
import sys

from harness import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench", "tls"))
import tls_profile as tp  # noqa: E402

BIN = "dagent"


def test_aes_gcm_is_counted_as_crypto():
    assert tp.classify([("CNIOBoringSSL_aes_gcm_dec_update_vaes_avx512", BIN)]) == "aes-gcm"
    assert tp.classify([("CNIOBoringSSL_gcm_gmult_vpclmulqdq_avx512", BIN)]) == "aes-gcm"


def test_bio_copy_through_bytebuffer_is_a_tls_copy():
    # memmove <- ByteBuffer._setBytes <- ByteBufferBIO.sslWrite: the BIO's copy of a sealed record
    stack = [("__memmove_avx512_unaligned_erms", "libc.so.6"),
             ("$s7NIOCore10ByteBufferV9_setBytes_2ats6UInt32VSW_AGtF", BIN),
             ("$s6NIOSSL13ByteBufferBIOC8sslWrite33_C6140A01466B130B53BD1EA0F2A91BCDLL6buffers5Int32VSW_tF", BIN)]
    assert tp.classify(stack) == "tls-copy"


def test_dagent_copies_and_code_are_not_tls():
    carry = [("__memmove_avx512_unaligned_erms", "libc.so.6"),
             ("$s7NIOCore10ByteBufferV05writeC0ySiACzF", BIN),
             ("$s10DAgentWire11FrameReaderV9fillCarry", BIN)]
    assert tp.classify(carry) == "memmove"
    assert tp.classify([("$s10DAgentWire13EnvelopeCodecO4skip8wireType", BIN)]) == "other"


def test_runtime_calls_from_nio_ssl_are_tls_other():
    stack = [("swift_release", "libswiftCore.so"),
             ("$s6NIOSSL21boringSSLBIOWriteFunc3bio3buf3lens5Int32V", BIN)]
    assert tp.classify(stack) == "tls-other"
    assert tp.classify([("bssl::CNIOBoringSSL::tls_open_record", BIN)]) == "tls-other"


def test_kernel_is_kernel_even_under_nio_ssl():
    # a socket write issued by NIOSSLHandler.flush is the same kernel work plaintext does
    stack = [("_copy_from_iter", "[kernel.kallsyms]"), ("tcp_sendmsg_locked", "[kernel.kallsyms]"),
             ("__GI___libc_write", "libc.so.6"), ("$s6NIOSSL13NIOSSLHandlerC5flush", BIN)]
    assert tp.classify(stack) == "kernel"


def test_socket_write_under_nio_ssl_flush_is_not_tls():
    # deeper than TLS_DEPTH frames from the leaf: NIO's write path, not NIOSSL's work
    stack = [("__GI___libc_write", "libc.so.6"), ("$s8NIOPosix6SocketC5write", BIN),
             ("$s8NIOPosix20PendingWritesManager", BIN), ("$s8NIOPosix17BaseSocketChannelC8flushNow", BIN),
             ("$s6NIOSSL13NIOSSLHandlerC5flush", BIN)]
    assert tp.classify(stack) == "other"


def test_perf_script_stacks_are_parsed(monkeypatch, tmp_path):
    text = ("\t    7f00 __memmove_avx512_unaligned_erms (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
            "\t    5500 $s6NIOSSL13ByteBufferBIOC8sslWrite (/tmp/x/dagent)\n"
            "\n"
            "\tffffffff81 _raw_spin_unlock_irqrestore ([kernel.kallsyms])\n"
            "\t    5501 swift::RefCounts<swift::RefCountBitsT<(swift::RefCountInlinedness)1> >::doDecrementSlow (/opt/swift/libswiftCore.so)\n"
            "\n")

    class Done:
        stdout = text
    monkeypatch.setattr(tp.subprocess, "run", lambda *a, **k: Done())
    stacks = list(tp.samples(str(tmp_path / "perf.data")))
    assert stacks == [
        [("__memmove_avx512_unaligned_erms", "libc.so.6"), ("$s6NIOSSL13ByteBufferBIOC8sslWrite", "dagent")],
        [("_raw_spin_unlock_irqrestore", "[kernel.kallsyms]"),
         ("swift::RefCounts<swift::RefCountBitsT<(swift::RefCountInlinedness)1> >::doDecrementSlow", "libswiftCore.so")],
    ]
    assert [tp.classify(s) for s in stacks] == ["tls-copy", "kernel"]
