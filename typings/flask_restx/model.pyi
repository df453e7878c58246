from typing import Any

class SchemaModel(dict[str, Any]):
    name: str
