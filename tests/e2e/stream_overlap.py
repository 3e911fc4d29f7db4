#!/usr/bin/env python3
"""A retransmitted TCP segment that overlaps bytes already received, sent
into a connection the stream router spliced: does the backend get the
overlap twice? (stream_overlap.sh)

  stream_overlap.py FRONTEND_PORT BACKEND_PORT PREFIX OLD NEW

Listens on BACKEND_PORT (the backend the PREFIX routes to), connects to
FRONTEND_PORT on 127.0.0.1, sends PREFIX and 20,000 bytes of "A", and waits
until the backend has all of them: the router's socket has then received
them. It reads the client's next send sequence number (TCP_REPAIR) and,
from a raw socket, sends one segment as that client: the last OLD bytes
again and NEW bytes of "B" after them, the way a retransmission cut
differently from the original overlaps what arrived. TCP queues such a
segment whole; the backend must get only the NEW bytes. Prints one JSON
line: "first" (the first bytes arrived exactly), "next" (what the backend
got next, as long as NEW) and "exact". Needs root and tcp_timestamps=0 in
the namespace (the raw segment carries no options).
"""
import json
import socket
import struct
import sys

TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2
LOCALHOST = "127.0.0.1"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def queue_seq(sock, queue):
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, queue)
    return struct.unpack("I", sock.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]


def next_sequence_numbers(sock):
    """The client's next send and receive sequence numbers."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    try:
        return queue_seq(sock, TCP_SEND_QUEUE), queue_seq(sock, TCP_RECV_QUEUE)
    finally:
        sock.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 0)


def read_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def main():
    frontend, backend_port = int(sys.argv[1]), int(sys.argv[2])
    prefix, old, new = sys.argv[3].encode(), int(sys.argv[4]), int(sys.argv[5])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((LOCALHOST, backend_port))
    listener.listen(1)
    client = socket.create_connection((LOCALHOST, frontend), timeout=10)
    first = prefix + b"A" * 20000
    client.sendall(first)
    backend, _ = listener.accept()
    backend.settimeout(10)
    got_first = read_exactly(backend, len(first))

    send_next, receive_next = next_sequence_numbers(client)
    payload = first[-old:] + b"B" * new
    header = struct.pack("!HHIIBBHHH", client.getsockname()[1], frontend,
                         (send_next - old) & 0xFFFFFFFF, receive_next,
                         5 << 4, 0x18, 65535, 0, 0)  # ACK|PSH, no options
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(LOCALHOST), socket.inet_aton(LOCALHOST),
                         0, socket.IPPROTO_TCP, len(header) + len(payload))
    header = header[:16] + struct.pack("!H", checksum(pseudo + header + payload)) + header[18:]
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    raw.sendto(header + payload, (LOCALHOST, 0))

    # A repeat would come before the new bytes: the first NEW bytes tell.
    got_next = read_exactly(backend, new)
    print(json.dumps({"first": got_first == first, "next": got_next.decode("latin-1")[:80],
                      "next_length": len(got_next), "exact": got_next == b"B" * new}))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


if __name__ == "__main__":
    main()
