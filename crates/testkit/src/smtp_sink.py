"""An SMTP server for the tests (saltrs-testkit's Kind::Smtp), on aiosmtpd.

Every message it accepts is saved in --maildir as N.json (the envelope: mail_from, rcpt_tos,
whether STARTTLS was used, who logged in and how) and N.eml (the data, as received), the
.json first, each renamed into place when whole.

--tls-cert/--tls-key: STARTTLS offered with that certificate. --users FILE (lines of
user:password): AUTH PLAIN and LOGIN, required, and only after STARTTLS when TLS is offered.

Refusals on demand: a recipient whose address holds "refuse" gets a 550, one that holds
"later" a 451; a file "refuse_next" in the maildir's parent holds a reply line the next
message's DATA gets instead of a 250 (the file is removed then).
"""

import argparse
import asyncio
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--maildir", required=True)
parser.add_argument("--tls-cert")
parser.add_argument("--tls-key")
parser.add_argument("--users")
args = parser.parse_args()

MAILDIR = args.maildir
CONTROL = os.path.dirname(os.path.abspath(MAILDIR))
os.makedirs(MAILDIR, exist_ok=True)
USERS = {}
if args.users:
    with open(args.users) as f:
        for line in f:
            user, _, password = line.rstrip("\n").partition(":")
            USERS[user] = password


def save(name, data):
    tmp = os.path.join(MAILDIR, "." + name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(MAILDIR, name))


def next_number():
    taken = [int(n.split(".")[0]) for n in os.listdir(MAILDIR) if n.endswith(".json")]
    return max(taken, default=0) + 1


def authenticator(server, session, envelope, mechanism, auth_data):
    if not isinstance(auth_data, LoginPassword):
        return AuthResult(success=False, handled=False)
    user, password = auth_data.login.decode(), auth_data.password.decode()
    if USERS.get(user) != password:
        return AuthResult(success=False, handled=False)
    session.saltrs_login = {"user": user, "mechanism": mechanism}
    return AuthResult(success=True)


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "refuse" in address:
            return "550 5.1.1 <%s>: this mailbox refuses all mail (test)" % address
        if "later" in address:
            return "451 4.3.0 <%s>: mailbox busy, try again later (test)" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        once = os.path.join(CONTROL, "refuse_next")
        if os.path.exists(once):
            with open(once) as f:
                reply = f.read().strip()
            os.remove(once)
            return reply
        n = next_number()
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "login": getattr(session, "saltrs_login", None),
        }
        save("%d.json" % n, json.dumps(meta).encode())
        save("%d.eml" % n, envelope.original_content)
        return "250 Message accepted for delivery"


async def main():
    tls = None
    if args.tls_cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
    handler = Handler()

    def factory():
        return SMTP(
            handler,
            hostname="saltrs-test-smtp",
            tls_context=tls,
            authenticator=authenticator if USERS else None,
            auth_required=bool(USERS),
            auth_require_tls=tls is not None,
        )

    server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", args.port)
    print("smtp_sink: listening on 127.0.0.1:%d" % args.port, flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
