"""An SMTP sink for Canopy's tests, on aiosmtpd.

Accepts every message and stores it as <dir>/<n>.eml. Before each
message it waits <dir>/delay seconds, if that file exists, and reads <dir>/reply: if that file holds an SMTP reply (such as
"451 4.3.0 try later" or "550 5.1.1 no such user") the message is
refused with it instead. Prints "ready" once listening; exits when its
standard input closes, so it never outlives the test that started it.
"""

import argparse
import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count(1)

    def reply(self):
        try:
            with open(os.path.join(self.directory, "reply")) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def delay(self):
        try:
            with open(os.path.join(self.directory, "delay")) as f:
                return float(f.read().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    async def handle_DATA(self, server, session, envelope):
        pause = self.delay()
        if pause:
            await asyncio.sleep(pause)
        refusal = self.reply()
        if refusal:
            return refusal
        path = os.path.join(self.directory, f"{next(self.numbers):06}.eml")
        with open(path + ".part", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args()
    controller = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
