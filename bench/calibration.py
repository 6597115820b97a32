"""How far threadline's token estimate is from a real tokenizer, before and after calibration.

Runs a conversation on a store session through a model that reports real input-token
counts, and compares, for every request, the provider-reported input tokens with

* the raw estimate (four characters of compact JSON a token: what windows use without
  calibration), and
* the calibrated estimate: the raw estimate times the session's ratio as it stood *before*
  that request (what the next window budget uses).

Providers: ``local`` (the embedded Gemma 3 270M through llama.cpp, its own tokenizer and
chat template; needs ``threadline[local]``) and ``scripted`` (``threadline.testing``'s
scripted model, which counts about four characters a token per item and nothing for
instructions: a consistency check, not a tokenizer). Content: English prose, JSON-like tool
text and Chinese, in turns of the benchmark's sizes.

    PYTHONPATH=src python bench/calibration.py --provider local --turns 24
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _items import turns

from threadline import Agent, ModelSettings, Runner, SessionSettings
from threadline.models.base import ModelRequest, ModelResponse
from threadline.run.persistence import estimate_request
from threadline.sessions import InMemoryStore
from threadline.sessions._usage import calibration_ratio

_JSONISH = (
    '{"order_id": "A-10293", "items": [{"sku": "XK-77", "qty": 2, "price": 19.99}], '
    '"ship_to": {"city": "San Francisco", "zip": "94103"}, "notes": null}'
)
_CHINESE = "金门大桥位于旧金山，是一座悬索桥，连接旧金山半岛和马林县。它在雾中常常只露出塔顶。"


_KINDS = ("prose", "json", "chinese")


def _inputs(count: int, content: str) -> list[tuple[str, str]]:
    prose = [item["content"] for item in turns(count) if item.get("role") == "user"]
    kinds = []
    for n in range(count):
        kind = _KINDS[n % 3] if content == "mixed" else content
        if kind == "prose":
            text = str(prose[n])
        elif kind == "json":
            text = f"Check this order {n}: " + _JSONISH
        else:
            text = f"第{n}个问题：" + _CHINESE
        kinds.append((kind, text))
    return kinds


class Recording:
    """Wraps a model; records (estimate, reported input tokens) per request."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.samples: list[tuple[int, int]] = []

    async def get_response(self, request: ModelRequest) -> ModelResponse:
        response: ModelResponse = await self.inner.get_response(request)
        self.samples.append((estimate_request(request), response.usage.input_tokens))
        return response

    def stream_response(self, request: ModelRequest) -> Any:
        raise NotImplementedError


def _model(provider: str) -> Any:
    if provider == "local":
        from threadline.models.local import local_model

        return local_model(start=True)
    from threadline.testing import ScriptedModel

    return ScriptedModel(["Noted."] * 1000)


async def measure(provider: str, count: int, content: str) -> dict[str, Any]:
    model = Recording(_model(provider))
    agent = Agent(
        name="A",
        instructions="You are a helpful assistant. Reply in one short sentence.",
        model=model,
        model_settings=ModelSettings(max_tokens=8, temperature=0.0),
    )
    rows = []
    async with InMemoryStore() as store:
        session = store.session("calibration", session_settings=SessionSettings(max_tokens=1500))
        for kind, text in _inputs(count, content):
            ratio = calibration_ratio(await session.get_record("usage"))
            before = len(model.samples)
            await Runner.run(agent, text, session=session)
            for estimate, reported in model.samples[before:]:
                if reported > 0:
                    rows.append((kind, estimate, reported, ratio))
    return {"provider": provider, "rows": rows}


def _errors(rows: list[tuple[str, int, int, float | None]]) -> dict[str, tuple[float, float]]:
    raw = [abs(est - rep) / rep for _, est, rep, _ in rows]
    calibrated = [abs(est * ratio - rep) / rep for _, est, rep, ratio in rows if ratio]
    return {
        "raw": (statistics.median(raw), max(raw)),
        "calibrated": (statistics.median(calibrated), max(calibrated))
        if calibrated
        else (float("nan"), float("nan")),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--provider", choices=["local", "scripted"], default="scripted")
    parser.add_argument("--turns", type=int, default=24)
    parser.add_argument("--content", choices=["mixed", *_KINDS], default="mixed")
    args = parser.parse_args()
    result = await measure(args.provider, args.turns, args.content)
    rows = result["rows"]
    errors = _errors(rows)
    ratios = [ratio for *_, ratio in rows if ratio]
    print(f"provider {args.provider}, content {args.content}: {len(rows)} requests")
    print(
        f"  raw estimate error: median {errors['raw'][0]:.1%}, max {errors['raw'][1]:.1%}; "
        f"reported/estimated at the end: {rows[-1][2] / rows[-1][1]:.3f}"
    )
    print(
        f"  calibrated error (ratio before each request): median {errors['calibrated'][0]:.1%},"
        f" max {errors['calibrated'][1]:.1%}; final ratio {ratios[-1] if ratios else None}"
    )
    for kind in ("prose", "json", "chinese"):
        picked = [r for r in rows if r[0] == kind]
        if picked:
            each = _errors(picked)
            print(
                f"  {kind}: raw median {each['raw'][0]:.1%}, calibrated median "
                f"{each['calibrated'][0]:.1%}"
            )


if __name__ == "__main__":
    asyncio.run(main())
