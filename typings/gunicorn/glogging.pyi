from typing import Any

class Logger:
    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None: ...
