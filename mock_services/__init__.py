"""Four aiohttp mock services with injectable faults (planned: issue 3)."""
