"""Tools: the ``FunctionTool`` interface and the ``@function_tool`` decorator."""

from ._schema import ensure_strict_json_schema
from .base import FunctionTool, Tool, ToolErrorFunction, default_tool_error_function
from .function_tool import function_tool, tool_output_to_str

__all__ = [
    "FunctionTool",
    "Tool",
    "ToolErrorFunction",
    "default_tool_error_function",
    "ensure_strict_json_schema",
    "function_tool",
    "tool_output_to_str",
]
