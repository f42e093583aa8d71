"""A real SMTP server for Gatehouse's tests, built on aiosmtpd.

    python smtp_server.py PORT OUTPUT_DIR

Listens on 127.0.0.1:PORT and writes every accepted message as one JSON file into
OUTPUT_DIR (written under a temporary name, then renamed, so a reader never sees half a
file). Recipients whose local part starts with `reject` are refused at RCPT with a
permanent 550, those starting with `tempfail` with a transient 451. Prints
`SMTP READY <port>` once it listens, and exits on SIGTERM, SIGINT or when its standard
input closes (the test process that started it is gone).
"""

import email
import email.policy
import itertools
import json
import os
import signal
import sys
import threading
import time

try:
    from aiosmtpd.controller import Controller
except ImportError:
    print(
        "aiosmtpd is not importable by this interpreter: "
        "python3 -m venv .venv-test && .venv-test/bin/pip install -r "
        "cluster-tests/smtp/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(3)

READY_PREFIX = "SMTP READY"
REJECT_REPLY = "550 5.1.1 mailbox unavailable"
TEMPFAIL_REPLY = "451 4.3.0 try again later"


def header(message, name):
    value = message.get(name)
    return "" if value is None else str(value)


def body_part(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return ""
    return part.get_content().replace("\r\n", "\n")


def describe(envelope):
    raw = envelope.original_content or envelope.content
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    from_header = message.get("From")
    mailbox = from_header.addresses[0] if from_header and from_header.addresses else None
    return {
        "envelope_from": envelope.mail_from or "",
        "envelope_recipients": list(envelope.rcpt_tos),
        "message_id": header(message, "Message-ID"),
        "from": header(message, "From"),
        "from_name": mailbox.display_name if mailbox else "",
        "from_address": mailbox.addr_spec if mailbox else "",
        "to": header(message, "To"),
        "reply_to": header(message, "Reply-To"),
        "subject": header(message, "Subject"),
        "text": body_part(message, "plain"),
        "html": body_part(message, "html"),
        "headers": [[name, str(value)] for name, value in message.items()],
        "raw": raw.decode("utf-8", "replace"),
    }


class RecordingHandler:
    """Refuses the special recipients and records every accepted message."""

    def __init__(self, output_dir):
        self.output_dir = output_dir
        self.sequence = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local_part = address.rsplit("@", 1)[0].lower()
        if local_part.startswith("reject"):
            return REJECT_REPLY
        if local_part.startswith("tempfail"):
            return TEMPFAIL_REPLY
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        record = describe(envelope)
        record["received_at"] = time.time()
        with self.lock:
            number = next(self.sequence)
        name = f"{time.time_ns():020d}-{os.getpid()}-{number:06d}.json"
        temporary = os.path.join(self.output_dir, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, os.path.join(self.output_dir, name))
        return "250 2.0.0 message accepted"


def main():
    if len(sys.argv) != 3:
        print("usage: smtp_server.py PORT OUTPUT_DIR", file=sys.stderr)
        return 2
    port = int(sys.argv[1])
    output_dir = sys.argv[2]
    os.makedirs(output_dir, exist_ok=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def watch_stdin():
        # End of file on stdin means the process that started us is gone.
        while sys.stdin.buffer.read(4096):
            pass
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()

    controller = Controller(RecordingHandler(output_dir), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"{READY_PREFIX} {port}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
