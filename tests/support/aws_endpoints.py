#!/usr/bin/env python3
"""tests/support/aws_endpoints.py — the AWS-side endpoints the AWS provider's
tests need besides moto, on 127.0.0.1 only: the ECS container credentials
endpoint, EC2 instance metadata (IMDSv2), and a fault-injecting proxy in front
of moto (throttling and 5xx answers before the real one).

    aws_endpoints.py PORT MOTO_PORT

GET  /creds                     container credentials (needs Authorization: test-auth-token)
PUT  /latest/api/token          IMDSv2 session token (needs the TTL header)
GET  /latest/meta-data/iam/security-credentials/[ROLE]   (needs the token)
POST /control                   {"fail": N, "status": 400, "body": "...", "op": "RunTask", "expires_in": S}
                                (op: only requests for that operation fail; "" any)
GET  /counts                    {"path": count, ...}
POST /                          forwarded to moto after the next N injected failures
"""
import datetime
import http.client
import http.server
import json
import sys
import threading

lock = threading.Lock()
state = {"fail": 0, "op": "", "status": 400, "ctype": "application/x-amz-json-1.1",
         "body": '{"__type":"ThrottlingException","message":"Rate exceeded"}',
         "expires_in": 6 * 3600, "counts": {}}
IMDS_TOKEN = "imds-session-token-123"


def creds(key):
    exp = datetime.datetime.utcnow() + datetime.timedelta(seconds=state["expires_in"])
    return {"Code": "Success", "AccessKeyId": key, "SecretAccessKey": "secret-" + key,
            "Token": "token-" + key, "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def count(self):
        with lock:
            state["counts"][self.path] = state["counts"].get(self.path, 0) + 1

    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self.count()
        if self.path == "/counts":
            with lock:
                return self.reply(200, json.dumps(state["counts"]))
        if self.path == "/creds":
            if self.headers.get("Authorization") != "test-auth-token":
                return self.reply(401, '{"message":"bad token"}')
            return self.reply(200, json.dumps(creds("ASIACONTAINER")))
        if self.path.startswith("/latest/meta-data/iam/security-credentials/"):
            if self.headers.get("X-aws-ec2-metadata-token") != IMDS_TOKEN:
                return self.reply(401, "")
            role = self.path.rsplit("/", 1)[1]
            if not role:
                return self.reply(200, "herd-test-role", "text/plain")
            if role != "herd-test-role":
                return self.reply(404, "")
            return self.reply(200, json.dumps(creds("ASIAIMDS")))
        return self.reply(404, "")

    def do_PUT(self):
        self.count()
        self.body()
        if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(200, IMDS_TOKEN, "text/plain")
        return self.reply(400, "")

    def do_POST(self):
        self.count()
        data = self.body()
        if self.path == "/control":
            with lock:
                state.update(json.loads(data))
            return self.reply(200, "{}")
        target = self.headers.get("X-Amz-Target") or ""
        op = target.rsplit(".", 1)[-1] if target else ""
        if not op and data.startswith(b"Action="):
            op = data[7:].split(b"&", 1)[0].decode()
        with lock:
            inject = state["fail"] > 0 and state["op"] in ("", op)
            if inject:
                state["fail"] -= 1
        if inject:
            return self.reply(state["status"], state["body"], state["ctype"])
        conn = http.client.HTTPConnection("127.0.0.1", MOTO_PORT, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        conn.request("POST", self.path, body=data, headers=hdrs)
        r = conn.getresponse()
        out = r.read()
        self.reply(r.status, out, r.getheader("Content-Type") or "application/json")
        conn.close()


if __name__ == "__main__":
    PORT, MOTO_PORT = int(sys.argv[1]), int(sys.argv[2])
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H)
    print("ready", flush=True)
    srv.serve_forever()
