"""moto's server, answering one request at a time, as AWS's own services appear to.

moto's backends are plain dictionaries: two requests at once can interleave inside one
operation. Racing conditional writes to DynamoDB then overshoot a quota now and then, and an S3
multipart upload completed while it is aborted fails with a ``KeyError`` (a 500 AWS never
gives). Serialising requests makes each one atomic. SQS is left out: its long polls (a second
each, several pollers) would otherwise hold everything else up, and nothing here races on it.

In front of both, ``presigned.PresignedUrlGuard`` refuses the presigned S3 requests S3 would
refuse (moto checks none of them), before they wait for the lock or reach moto.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from local_stack.presigned import LOCAL_CREDENTIALS, PresignedUrlGuard


class _OneAtATime:
    def __init__(self, app: WSGIApplication) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS."):
            return self._app(environ, start_response)
        with self._lock:
            # The whole body is produced inside the lock: moto may build it lazily.
            return list(self._app(environ, start_response))


class AtomicMotoServer(ThreadedMotoServer):
    """moto one request at a time, checking presigned S3 URLs against ``credentials``.

    ``credentials`` maps each access key id that may sign URLs to its secret key.
    """

    def __init__(
        self,
        ip_address: str,
        port: int,
        verbose: bool = True,
        *,
        credentials: Mapping[str, str] = LOCAL_CREDENTIALS,
    ) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=verbose)
        self._credentials = credentials

    def _server_entry(self) -> None:
        moto = _OneAtATime(DomainDispatcherApplication(create_backend_app))
        app = PresignedUrlGuard(moto, self._credentials)
        self._server = make_server(self._ip_address, self._port, app, threaded=True)
        self._server_ready_event.set()
        self._server.serve_forever()
