"""A controller's MQTT feed in a process of its own, to kill:
``python -m tests.mqtt_child URL PREFIX``. Prints ``connected`` once the broker has it."""

from __future__ import annotations

import asyncio
import sys

from router.mqtt import MqttFeed, Topics, parse_broker_url


async def main(url: str, prefix: str) -> None:
    async with MqttFeed(parse_broker_url(url), Topics(prefix)) as feed:
        while not feed.stats.connected:
            await asyncio.sleep(0.01)
        print("connected", flush=True)
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
