#!/usr/bin/env python3
"""Clients and backends for the stream router's e2e tests (stream_*.sh).

Every mode prints one JSON line with what it sent and received, so the
test compares exact bytes (or their sha256) on both ends.

  send HOST PORT TEXT [--per-byte | --with-fin] [--hold S] [--fin] [--fin-after N]
       [--source ADDRESS]
      Sends TEXT (\\n escapes allowed), one byte per segment with TCP_NODELAY
      when --per-byte, keeps the connection open --hold seconds, half-closes
      with --fin, then reads until the peer closes. Reports how it ended:
      "eof" (FIN), "reset" (RST) or "timeout", after how many seconds from
      its connect ("lasted_s"), and its own address and port ("local",
      "local_port"; from --source when given).
  bulk-client HOST PORT PREFIX BYTES [--reset-after BYTES] [--fin-last]
      Sends PREFIX then BYTES of a fixed pattern while reading whatever comes
      back, then half-closes and reads until EOF (with --fin-last: reads
      until EOF, then half-closes).
  bulk-server PORT BYTES [--reset-after BYTES] [--ready FILE] [--host ADDRESS]
      Accepts one connection, reads everything while sending BYTES of the
      pattern, then half-closes and reads until EOF.
  echo-server PORT [--label] [--greet TEXT [--greet-fin]] [--ready FILE] [--host ADDRESS]
      Accepts connections forever; each gets back what it sends (after
      "PORT:" with --label), and a FIN after the client's FIN. With --greet
      it speaks first: TEXT as soon as it accepts; with --greet-fin it then
      half-closes at once and only reads to the client's FIN.
  late-accept-server PORT [--ready FILE]
      Listens with its accept queue full (a backlog of 0 and a connection of
      its own in it), so the kernel drops the SYNs that come (counted as
      TcpExtListenOverflows) and a client's connect() waits for its SYN's
      retransmission (1 s). Once a SYN was dropped (or after --timeout), it
      frees the queue and echoes every connection to its end, one thread
      each. Prints {"syn_dropped": true|false} when it frees the queue.
  many HOST PORT COUNT TEXT
      Opens COUNT connections at once, sends TEXT on each, reads the echo,
      half-closes all, reads to EOF; reports how many got exactly their echo.
  sequential HOST PORT COUNT TEXT [--greeting TEXT [--greet-fin]]
      COUNT connections one after another, each sending TEXT, half-closing
      and reading the echo to EOF; reports how many got exactly their echo.
      With --greeting the server speaks first: exactly the greeting then the
      echo come back; with --greet-fin, exactly the greeting and the
      server's FIN, before the client half-closes.

Servers listen on --host: 127.0.0.1 unless told (::1 for IPv6 clients only).
"""
import asyncio
import resource
import argparse
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time

CHUNK = 1 << 20
# A period that is not a divisor of any chunk size: a chunk lost, repeated or
# swapped changes the digest.
PATTERN = hashlib.shake_256(b"portmux stream").digest(CHUNK - 3)


def pattern_chunks(total):
    """Yields TOTAL bytes of the repeating pattern in chunks of up to CHUNK."""
    offset = 0
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        out = bytearray()
        while len(out) < size:
            take = min(size - len(out), len(PATTERN) - offset)
            out += PATTERN[offset:offset + take]
            offset = (offset + take) % len(PATTERN)
        sent += size
        yield bytes(out)


def reset_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Receiver(threading.Thread):
    """Reads a socket to its end, hashing what comes."""

    def __init__(self, sock, timeout):
        super().__init__(daemon=True)
        self.sock = sock
        self.timeout = timeout
        self.digest = hashlib.sha256()
        self.count = 0
        self.head = b""
        self.ended = "running"
        self.ended_at = None
        self.first_reply_file = None

    def run(self):
        self.sock.settimeout(self.timeout)
        try:
            while True:
                data = self.sock.recv(CHUNK)
                if not data:
                    self.ended = "eof"
                    return
                if self.count == 0 and self.first_reply_file:
                    announce(self.first_reply_file)
                if len(self.head) < 256:
                    self.head += data[:256 - len(self.head)]
                self.digest.update(data)
                self.count += len(data)
        except ConnectionResetError:
            self.ended = "reset"
        except socket.timeout:
            self.ended = "timeout"
        except OSError as error:
            self.ended = "error: %s" % error
        finally:
            self.ended_at = time.monotonic()

    def report(self):
        return {"received": self.count, "received_sha256": self.digest.hexdigest(),
                "received_head": self.head.decode("latin-1"), "ended": self.ended}


def send_all(sock, chunks, digest, reset_after=None):
    """Sends the chunks; returns bytes sent, or None after a reset."""
    sent = 0
    for chunk in chunks:
        if reset_after is not None and sent + len(chunk) >= reset_after:
            chunk = chunk[:reset_after - sent]
            sock.sendall(chunk)
            digest.update(chunk)
            sent += len(chunk)
            return sent
        sock.sendall(chunk)
        digest.update(chunk)
        sent += len(chunk)
    return sent


def mode_send(args):
    text = args.text.encode().decode("unicode_escape").encode("latin-1")
    source = (args.source, 0) if args.source else None
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout,
                                    source_address=source)
    connected_at = time.monotonic()
    local = sock.getsockname()
    receiver = Receiver(sock, args.timeout)
    receiver.first_reply_file = args.first_reply_file
    receiver.start()
    try:
        if args.per_byte:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for index in range(len(text)):
                sock.send(text[index:index + 1])
                time.sleep(args.gap)
        elif args.with_fin:
            # Corked, the request waits in the send queue and the FIN joins
            # it: one segment carries both.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            sock.sendall(text)
            sock.shutdown(socket.SHUT_WR)
        elif text:
            sock.sendall(text)
        if args.hold:
            time.sleep(args.hold)
        if args.second is not None:
            deadline = time.monotonic() + args.timeout
            while args.second_when and not os.path.exists(args.second_when):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            sock.sendall(args.second.encode())
        if args.reset_after_send:
            time.sleep(0.2)
            reset_close(sock)
            print(json.dumps({"sent": len(text), "ended": "reset sent"}))
            return
        if args.fin_after is not None:
            # Half-close only once this much came back: the connection was
            # spliced and carried data both ways before its FIN.
            deadline = time.monotonic() + args.timeout
            while receiver.count < args.fin_after and receiver.is_alive():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        if args.fin or args.fin_after is not None:
            sock.shutdown(socket.SHUT_WR)
    except (BrokenPipeError, ConnectionResetError):
        pass
    receiver.join(args.timeout + 1)
    report = {"sent": len(text) + len(args.second or ""), "local": local[0], "local_port": local[1]}
    report.update(receiver.report())
    if receiver.ended_at is not None:
        report["lasted_s"] = round(receiver.ended_at - connected_at, 3)
    print(json.dumps(report))


def mode_bulk_client(args):
    prefix = args.prefix.encode().decode("unicode_escape").encode("latin-1")
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    receiver = Receiver(sock, args.timeout)
    receiver.start()
    digest = hashlib.sha256()
    started = time.monotonic()
    sock.sendall(prefix)
    digest.update(prefix)
    try:
        sent = len(prefix) + send_all(sock, pattern_chunks(args.bytes), digest, args.reset_after)
        if args.reset_after is not None:
            time.sleep(0.3)
            reset_close(sock)
            print(json.dumps({"sent": sent, "ended": "reset sent"}))
            return
        if args.fin_last:
            receiver.join(args.timeout + 1)
        sock.shutdown(socket.SHUT_WR)
        state = "sent"
    except (BrokenPipeError, ConnectionResetError) as error:
        sent = None
        state = "send failed: %s" % error
    receiver.join(args.timeout + 1)
    report = {"sent": sent, "sent_sha256": digest.hexdigest(), "send": state,
              "seconds": round(time.monotonic() - started, 3)}
    report.update(receiver.report())
    print(json.dumps(report))


def listen(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def announce(path):
    if path:
        with open(path + ".tmp", "w") as ready:
            ready.write("%d\n" % os.getpid())
        os.rename(path + ".tmp", path)


def mode_bulk_server(args):
    server = listen(args.host, args.port)
    announce(args.ready)
    sock, _ = server.accept()
    receiver = Receiver(sock, args.timeout)
    if args.read_when:
        # A slow reader: nothing is read until the file appears.
        while not os.path.exists(args.read_when):
            time.sleep(0.02)
    receiver.start()
    digest = hashlib.sha256()
    try:
        sent = send_all(sock, pattern_chunks(args.bytes), digest, args.reset_after)
        if args.reset_after is not None:
            time.sleep(0.3)
            reset_close(sock)
            print(json.dumps({"sent": sent, "ended": "reset sent"}), flush=True)
            return
        sock.shutdown(socket.SHUT_WR)
        state = "sent"
    except (BrokenPipeError, ConnectionResetError) as error:
        sent = None
        state = "send failed: %s" % error
    receiver.join(args.timeout + 1)
    report = {"sent": sent, "sent_sha256": digest.hexdigest(), "send": state}
    report.update(receiver.report())
    print(json.dumps(report), flush=True)


def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def mode_echo_server(args):
    raise_file_limit()
    label = ("%d:" % args.port).encode() if args.label else b""

    async def serve(reader, writer):
        first = True
        try:
            if args.greet is not None:
                writer.write(args.greet.encode())
                if args.greet_fin:
                    writer.write_eof()
                    await writer.drain()
                    while await reader.read(65536):
                        pass
                    return
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if first:
                    data = label + data
                    first = False
                writer.write(data)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def run():
        server = await asyncio.start_server(serve, args.host, args.port, backlog=4096,
                                            reuse_address=True)
        announce(args.ready)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def listen_overflows():
    """TcpExtListenOverflows of this network namespace."""
    with open("/proc/net/netstat") as netstat:
        lines = [line.split() for line in netstat if line.startswith("TcpExt:")]
    return int(lines[1][lines[0].index("ListenOverflows")])


def mode_late_accept_server(args):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((args.host, args.port))
    server.listen(0)
    filler = socket.create_connection((args.host, args.port))
    before = listen_overflows()
    announce(args.ready)
    deadline = time.monotonic() + args.timeout
    while listen_overflows() == before and time.monotonic() < deadline:
        time.sleep(0.01)
    dropped = listen_overflows() != before
    queued, _ = server.accept()
    queued.close()
    filler.close()
    print(json.dumps({"syn_dropped": dropped}), flush=True)

    def echo(sock):
        with sock:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)

    while True:
        sock, _ = server.accept()
        threading.Thread(target=echo, args=(sock,), daemon=True).start()


async def greeted_exchange(host, port, text, greeting, greet_fin):
    """Connects to a server that speaks first and sends TEXT: True when
    exactly GREETING then the echo of TEXT came back and a FIN after the
    client's; with GREET_FIN, exactly GREETING and the server's FIN before
    the client half-closes."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(text)
        await writer.drain()
        if greet_fin:
            got = await reader.read()
            writer.write_eof()
            writer.close()
            return got == greeting
        got = await reader.readexactly(len(greeting) + len(text))
        writer.write_eof()
        rest = await reader.read()
        writer.close()
        return got == greeting + text and rest == b""
    except (OSError, asyncio.IncompleteReadError):
        return False


async def one_exchange(host, port, text, echoed=None, hold=None):
    """Connects, sends TEXT, reads it back (then calls ECHOED and waits for
    HOLD, an asyncio.Event, if given), half-closes and reads to EOF: True
    when exactly TEXT came back and then a FIN."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(text)
        await writer.drain()
        got = await reader.readexactly(len(text))
        if echoed is not None:
            echoed()
        if hold is not None:
            await hold.wait()
        writer.write_eof()
        rest = await reader.read()
        writer.close()
        return got == text and rest == b""
    except (OSError, asyncio.IncompleteReadError):
        if echoed is not None:
            echoed()
        return False


def mode_many(args):
    raise_file_limit()
    text = args.text.encode()

    async def run():
        # Every connection is open and has had its echo before any of them
        # ends: the router holds COUNT spliced connections at once.
        hold = asyncio.Event()
        echoed = {"count": 0}

        def one_echoed():
            echoed["count"] += 1
            if echoed["count"] == args.count:
                hold.set()

        tasks = [one_exchange(args.host, args.port, text, one_echoed, hold)
                 for _ in range(args.count)]
        return sum(await asyncio.wait_for(asyncio.gather(*tasks), args.timeout))

    started = time.monotonic()
    ok = asyncio.run(run())
    print(json.dumps({"count": args.count, "ok": ok,
                      "seconds": round(time.monotonic() - started, 1)}))


def mode_sequential(args):
    text = args.text.encode()

    async def run():
        ok = 0
        for _ in range(args.count):
            if args.greeting is None:
                ok += await one_exchange(args.host, args.port, text)
            else:
                ok += await greeted_exchange(args.host, args.port, text, args.greeting.encode(),
                                             args.greet_fin)
        return ok

    started = time.monotonic()
    ok = asyncio.run(run())
    print(json.dumps({"count": args.count, "ok": ok,
                      "seconds": round(time.monotonic() - started, 1)}))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=20.0)
    modes = parser.add_subparsers(dest="mode", required=True)

    send = modes.add_parser("send")
    send.add_argument("host")
    send.add_argument("port", type=int)
    send.add_argument("text")
    send.add_argument("--per-byte", action="store_true")
    send.add_argument("--gap", type=float, default=0.02)
    send.add_argument("--hold", type=float, default=0.0)
    send.add_argument("--fin", action="store_true")
    send.add_argument("--reset-after-send", action="store_true")
    send.add_argument("--second", help="more text to send after the first")
    send.add_argument("--with-fin", action="store_true",
                      help="send TEXT and the FIN in one segment")
    send.add_argument("--fin-after", type=int, help="half-close once this many bytes came back")
    send.add_argument("--first-reply-file", help="create this file when the first reply comes")
    send.add_argument("--second-when", help="send --second once this file exists")
    send.add_argument("--source", help="the local address to send from")

    bulk_client = modes.add_parser("bulk-client")
    bulk_client.add_argument("host")
    bulk_client.add_argument("port", type=int)
    bulk_client.add_argument("prefix")
    bulk_client.add_argument("bytes", type=int)
    bulk_client.add_argument("--reset-after", type=int)
    bulk_client.add_argument("--fin-last", action="store_true",
                             help="half-close only after the peer's EOF")

    bulk_server = modes.add_parser("bulk-server")
    bulk_server.add_argument("port", type=int)
    bulk_server.add_argument("bytes", type=int)
    bulk_server.add_argument("--reset-after", type=int)
    bulk_server.add_argument("--ready")
    bulk_server.add_argument("--host", default="127.0.0.1")
    bulk_server.add_argument("--read-when", help="read nothing until this file exists")

    echo = modes.add_parser("echo-server")
    echo.add_argument("port", type=int)
    echo.add_argument("--ready")
    echo.add_argument("--label", action="store_true")
    echo.add_argument("--host", default="127.0.0.1")
    echo.add_argument("--greet", help="speak first: send this as soon as accepted")
    echo.add_argument("--greet-fin", action="store_true", help="half-close right after the greeting")

    late = modes.add_parser("late-accept-server")
    late.add_argument("port", type=int)
    late.add_argument("--ready")
    late.add_argument("--host", default="127.0.0.1")

    many = modes.add_parser("many")
    many.add_argument("host")
    many.add_argument("port", type=int)
    many.add_argument("count", type=int)
    many.add_argument("text")

    sequential = modes.add_parser("sequential")
    sequential.add_argument("host")
    sequential.add_argument("port", type=int)
    sequential.add_argument("count", type=int)
    sequential.add_argument("text")
    sequential.add_argument("--greeting", help="what the server sends first")
    sequential.add_argument("--greet-fin", action="store_true",
                            help="the server half-closes right after its greeting")

    args = parser.parse_args()
    {"send": mode_send, "bulk-client": mode_bulk_client, "bulk-server": mode_bulk_server,
     "echo-server": mode_echo_server,
     "late-accept-server": mode_late_accept_server, "many": mode_many, "sequential": mode_sequential}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
