"""Mailpit's SMTP side and its message list, enough for the compose smoke: stdlib only."""

import json
import socketserver
import threading
from email import message_from_bytes, policy
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MESSAGES: list[dict[str, object]] = []


class Smtp(socketserver.StreamRequestHandler):
    """One SMTP session: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; every mail is accepted."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 mailpit stand-in")
        while line := self.rfile.readline():
            verb = line.decode("utf-8", "replace").strip().split(" ")[0].upper()
            if verb == "EHLO":
                self.reply("250-mailpit")
                self.reply("250 8BITMIME")
            elif verb in {"HELO", "MAIL", "RCPT", "RSET", "NOOP"}:
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with .")
                self.receive()
                self.reply("250 OK: queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")

    def receive(self) -> None:
        lines = []
        while (line := self.rfile.readline()) not in {b".\r\n", b".\n", b""}:
            lines.append(line[1:] if line.startswith(b"..") else line)
        mail = message_from_bytes(b"".join(lines), policy=policy.default)
        to = [{"Name": name, "Address": address} for name, address in getaddresses(mail.get_all("To", []))]
        MESSAGES.append({"To": to, "Subject": str(mail["Subject"])})
        print(f"mail to {', '.join(a['Address'] for a in to)}: {mail['Subject']}", flush=True)


class Api(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        """The mails received so far, newest first, in the shape of Mailpit's list."""
        if self.path.split("?")[0] != "/api/v1/messages":
            self.send_error(404)
            return
        body = json.dumps({"total": len(MESSAGES), "messages": list(reversed(MESSAGES))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    smtp = socketserver.ThreadingTCPServer(("0.0.0.0", 1025), Smtp)  # noqa: S104 (inside the compose network)
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()  # noqa: S104
