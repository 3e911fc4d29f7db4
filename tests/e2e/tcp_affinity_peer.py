#!/usr/bin/env python3
"""Peers for tcp_syn_flood.sh.

  servers PORT...                 echo servers: each line comes back as "PORT line"
  clients HOST PORT N DIR         N connections, each sending one line a second
                                  until DIR/stop exists; writes DIR/ready once all
                                  are connected, DIR/result.json at the end
  probe HOST PORT COUNT TIMEOUT   COUNT new connections one after another, each
                                  one line and its echo within TIMEOUT s; prints
                                  a JSON summary (connected, seconds each)
"""
import asyncio
import json
import os
import sys
import time


async def serve(ports):
    async def handle(reader, writer, port):
        try:
            while line := await reader.readline():
                writer.write(f"{port} ".encode() + line)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(lambda r, w, p=p: handle(r, w, p), "0.0.0.0", p, backlog=128)
               for p in ports]
    for s in servers:
        await s.start_serving()
    await asyncio.Event().wait()


async def one_client(host, port, index, stop_file, ready):
    state = {"index": index, "sent": 0, "echoed": 0, "backends": [], "error": None}
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (OSError, asyncio.TimeoutError) as e:
        state["error"] = f"connect: {e!r}"
        ready.append(False)
        return state
    ready.append(True)
    try:
        while not os.path.exists(stop_file):
            state["sent"] += 1
            line = f"conn-{index} msg-{state['sent']}\n"
            writer.write(line.encode())
            await writer.drain()
            # TCP retransmits what a flood made the kernel drop: allow for it.
            answer = await asyncio.wait_for(reader.readline(), 15)
            if not answer:
                raise ConnectionError("closed by the peer")
            backend, _, echoed = answer.decode().partition(" ")
            if echoed != line:
                raise ValueError(f"wrong echo {answer!r}")
            state["echoed"] += 1
            if backend not in state["backends"]:
                state["backends"].append(backend)
            await asyncio.sleep(1)
    except (OSError, ValueError, asyncio.TimeoutError) as e:
        state["error"] = repr(e)
    finally:
        writer.close()
    return state


async def clients(host, port, count, directory):
    ready = []
    stop_file = os.path.join(directory, "stop")
    tasks = [asyncio.create_task(one_client(host, port, i, stop_file, ready)) for i in range(count)]
    while len(ready) < count:
        await asyncio.sleep(0.05)
    with open(os.path.join(directory, "ready"), "w") as f:
        f.write(f"{sum(ready)}\n")
    states = await asyncio.gather(*tasks)
    survived = [s for s in states if s["error"] is None and s["sent"] == s["echoed"] and len(s["backends"]) == 1]
    result = {"connections": count, "survived": len(survived),
              "messages": sum(s["echoed"] for s in states),
              "failed": [s for s in states if s not in survived]}
    with open(os.path.join(directory, "result.json"), "w") as f:
        json.dump(result, f)


async def probe(host, port, count, timeout):
    times, failures = [], []
    for i in range(count):
        start = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.write(f"probe-{i}\n".encode())
            answer = await asyncio.wait_for(reader.readline(), timeout)
            writer.close()
            if not answer.decode().endswith(f"probe-{i}\n"):
                raise ValueError(f"wrong echo {answer!r}")
            times.append(round(time.monotonic() - start, 3))
        except (OSError, ValueError, asyncio.TimeoutError) as e:
            failures.append(repr(e))
    print(json.dumps({"tried": count, "connected": len(times), "seconds": times, "failures": failures}))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "servers":
        asyncio.run(serve([int(p) for p in args]))
    elif mode == "clients":
        asyncio.run(clients(args[0], int(args[1]), int(args[2]), args[3]))
    elif mode == "probe":
        asyncio.run(probe(args[0], int(args[1]), int(args[2]), float(args[3])))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
