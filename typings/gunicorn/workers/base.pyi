import logging
from typing import Any

class Worker:
    log: logging.Logger
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None: ...
