"""Running the app under uvicorn, with framing errors answered in the contract's error shape.

A request uvicorn's HTTP parser refuses before the app sees it (a Content-Length that is not a number,
a malformed request line or header) gets uvicorn's plain-text 400; `JsonH11Protocol` answers it as
`{"error": {"code": "bad_request", ...}}` instead. `uvicorn app.main:app --http app.server:JsonH11Protocol`
does the same from uvicorn's command line.
"""

from __future__ import annotations

import json

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol


def framing_error_body(message: str) -> bytes:
    return json.dumps({"error": {"code": "bad_request", "message": f"the request is malformed: {message}",
                                 "details": None}}).encode()


class JsonH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        body = framing_error_body(msg)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]
        self.transport.write(self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request")))
        self.transport.write(self.conn.send(h11.Data(data=body)))
        self.transport.write(self.conn.send(h11.EndOfMessage()))
        self.transport.close()


def config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # log_config=None: the app's own logging setup (text or JSON, with request ids) stays in place
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, http=JsonH11Protocol, log_config=None)


def run(app: FastAPI, host: str, port: int, log_level: str) -> None:
    uvicorn.Server(config(app, host, port, log_level)).run()
